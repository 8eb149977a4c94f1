//! conv2d's [`Algorithm::Winograd`](crate::Algorithm::Winograd), F(2×2, 3×3): the plan and the
//! recording of one unsplit call (conv2d splits bigger ones into batch pieces, bands and
//! channel chunks first, each running this).
//!
//! Launches: `weights` (w → U, once), then per chunk of 2×2 output tiles `inputs` (x → V),
//! the GEMM core's dense GEMM over 16·G batches (U·V → M, K = Cin/G in passes under the loop
//! budget) and `outputs` (M → y with bias and activation). The workspaces (f32): U
//! `[16·G, Cout/G, Cin/G]` and V `[16·G, Cin/G, stride]` share slot 0 (both only read by the
//! GEMM), M `[16·G, Cout/G, stride]` is slot 1 (written by it); stride = the chunk's tiles
//! rounded up to 4 ([`winograd::row_length`]). Chunks of tiles keep
//! U + V + M within `EngineConfig::workspace_budget` and each within one binding.

use crate::context::GpuContext;
use crate::error::{Error, Result};
use crate::kernels::gemm::{self, GemmProblem};
use crate::kernels::winograd::{self, Stage, Variant, WinogradParams, POINTS};
use crate::kernels::{range, record, Dispatch, Step, UniformArena};
use crate::ops::conv2d::Conv2dLayouts;
use crate::params::{Activation, Conv2dGeometry};
use crate::tensor::{DType, Tensor};

/// How the tiles of one call are cut to fit the workspaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TileChunks {
    /// 2×2 output tiles of the whole batch: N·⌈Ho/2⌉·⌈Wo/2⌉.
    pub tiles: u32,
    /// Tiles per chunk (the last may hold fewer).
    pub per_chunk: u32,
    pub chunks: u32,
    /// Bytes of U; V starts at `v_offset` of the same buffer (U's size rounded up to the
    /// storage offset alignment).
    pub u_bytes: u64,
    pub v_offset: u64,
}

impl TileChunks {
    /// Bytes of V and of M for `tiles` tiles (rows of [`winograd::row_length`]).
    fn v_m_bytes(g: &Conv2dGeometry, tiles: u32) -> (u64, u64) {
        let per = POINTS as u64 * 4 * winograd::row_length(tiles) as u64;
        (per * g.c_in as u64, per * g.c_out as u64)
    }

    /// Workspace bytes of one chunk: U, V and M.
    pub fn workspace_bytes(&self, g: &Conv2dGeometry) -> u64 {
        let (v, m) = TileChunks::v_m_bytes(g, self.per_chunk);
        self.v_offset + v + m
    }
}

/// Loop turns of one `outputs` invocation at most (every loop of the kernel counts towards the
/// loop budget): the 16 points, then per tile of its 4 the 4 rows, the direct sum's Cin/G
/// channels × (1 + 3 kernel rows) (where every tile falls back: an infinite weight) and the
/// 4 stores.
pub(crate) fn loop_turns(g: &Conv2dGeometry) -> u64 {
    16 + 4 * (1 + 4 + 4 * g.c_in_per_group() as u64 + 4)
}

/// Cuts the tiles of `g` into chunks whose U + V + M fit the workspace budget, each operand
/// within one storage binding. [`Error::TooLarge`] where U alone exceeds a binding or not four
/// tiles fit.
pub(crate) fn plan_chunks(ctx: &GpuContext, g: &Conv2dGeometry) -> Result<TileChunks> {
    let (th, tw) = winograd::tiles(g);
    let tiles = g.n as u64 * th as u64 * tw as u64;
    if tiles == 0 {
        // an empty batch: nothing runs
        return Ok(TileChunks { tiles: 0, per_chunk: 0, chunks: 0, u_bytes: 0, v_offset: 0 });
    }
    let max = ctx.max_binding();
    let u_bytes = POINTS as u64 * 4 * g.c_out as u64 * g.c_in_per_group() as u64;
    if u_bytes > max {
        return Err(Error::TooLarge(format!(
            "winograd: the transformed weight (16·Cout·Cin/G f32 = {u_bytes} bytes) exceeds one storage binding ({max} \
             bytes); implicit_gemm needs no transformed copy"
        )));
    }
    let v_offset = u_bytes.next_multiple_of(ctx.limits().min_storage_buffer_offset_alignment as u64);
    let (v_tile, m_tile) = (POINTS as u64 * 4 * g.c_in as u64, POINTS as u64 * 4 * g.c_out as u64);
    let budget = ctx.config().workspace_budget;
    let buffer_room = ctx.limits().max_buffer_size.saturating_sub(v_offset) / v_tile;
    // whole multiples of 4 tiles (the rows' length)
    let fit =
        (budget.saturating_sub(v_offset) / (v_tile + m_tile)).min(max / v_tile).min(max / m_tile).min(buffer_room);
    if fit < 4 {
        return Err(Error::TooLarge(format!(
            "winograd: four tiles' transformed input and output ({} bytes) and the transformed weight ({u_bytes} \
             bytes) exceed the workspace budget of {budget} bytes (or a storage binding)",
            4 * (v_tile + m_tile)
        )));
    }
    let most = (fit / 4 * 4).min(tiles.max(1));
    // balanced chunks of a multiple of 4 tiles (only the last carries padding columns)
    let per_chunk = tiles.div_ceil(tiles.div_ceil(most)).next_multiple_of(4).min(most);
    let chunks = tiles.div_ceil(per_chunk);
    // V and M of a chunk fit one binding (< 2^32 bytes): every index the kernels form fits u32.
    let to_u32 = |v: u64| u32::try_from(v).map_err(|_| Error::TooLarge(format!("winograd: {v} tiles exceed u32")));
    Ok(TileChunks { tiles: to_u32(tiles)?, per_chunk: to_u32(per_chunk)?, chunks: to_u32(chunks)?, u_bytes, v_offset })
}

/// The GEMM of one chunk of `tiles` tiles: 16·G batches of (Cout/G × Cin/G) · (Cin/G × stride)
/// into M, read and written as plain matrices (`hw` = stride: one "image").
fn gemm_params(g: &Conv2dGeometry, tiles: u32) -> gemm::GemmParams {
    let (mo, k, n) = (g.c_out_per_group(), g.c_in_per_group(), winograd::row_length(tiles));
    gemm::GemmParams::new(mo, n, k, POINTS * g.groups, n, 0, 0)
}

fn gemm_plan(ctx: &GpuContext, g: &Conv2dGeometry, c: &TileChunks, tiles: u32) -> Result<gemm::GemmPlan> {
    let p = gemm_params(g, tiles);
    let ov = gemm::overrides(GemmProblem::Dense, Activation::None, false, &gemm::Aux::None);
    let (v_bytes, m_bytes) = TileChunks::v_m_bytes(g, tiles);
    gemm::plan(ctx, &p, GemmProblem::Dense, ov, false, Some((c.v_offset, v_bytes)), (m_bytes / 4) as usize)
}

/// Plans `g` by Winograd for a call whose tensors are `dtype` in `layouts`, with the epilogue
/// `(activation, has_bias)`, the weight a conv's or (`flip`) a stride-1 conv_transpose2d's: its
/// chunks of tiles and its launches, in recording order.
pub(crate) fn plan(
    ctx: &GpuContext,
    g: &Conv2dGeometry,
    (activation, has_bias): (Activation, bool),
    dtype: DType,
    layouts: Conv2dLayouts,
    flip: bool,
) -> Result<(TileChunks, Vec<Step>)> {
    let chunks = plan_chunks(ctx, g)?;
    let v = Variant { activation, has_bias, dtype, layouts: (layouts.input, layouts.output), flip };
    let steps = steps(ctx, g, &chunks, &v)?;
    Ok((chunks, steps))
}

/// The launches of `g` in `chunks`, in recording order.
fn steps(ctx: &GpuContext, g: &Conv2dGeometry, chunks: &TileChunks, v: &Variant) -> Result<Vec<Step>> {
    let base = WinogradParams::new(g, v.activation.alpha());
    let step = |p: &WinogradParams, stage| winograd::step(ctx, p, stage, v);
    let mut steps = vec![step(&base.stage(Stage::Weights, 0, 0), Stage::Weights)?.noted("weight transform")];
    for c in 0..chunks.chunks {
        let tile0 = c * chunks.per_chunk;
        let tiles = chunks.per_chunk.min(chunks.tiles - tile0);
        let what = format!("tiles {tile0}..{} (chunk {}/{})", tile0 + tiles, c + 1, chunks.chunks);
        let p = base.stage(Stage::Inputs, tile0, tiles);
        steps.push(step(&p, Stage::Inputs)?.noted(&format!("{what}: input transform")));
        steps.extend(gemm_plan(ctx, g, chunks, tiles)?.steps(&format!("{what}: 16·G GEMMs")));
        let p = base.stage(Stage::Outputs, tile0, tiles);
        steps.push(step(&p, Stage::Outputs)?.noted(&format!("{what}: output transform")));
    }
    Ok(steps)
}

/// Records `g` on these tensors (one binding each; the input and output in either layout) in
/// `chunks`, the weight a conv's or (`flip`) a stride-1 conv_transpose2d's; returns the
/// launches recorded.
pub(crate) fn encode(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    g: &Conv2dGeometry,
    chunks: &TileChunks,
    (act, flip): (Activation, bool),
    (input, weight, bias, output): (&Tensor, &Tensor, Option<&Tensor>, &Tensor),
) -> Result<usize> {
    let (dtype, layouts) = (output.dtype(), (input.layout(), output.layout()));
    let v = Variant { activation: act, has_bias: bias.is_some(), dtype, layouts, flip };
    let step = |p: &WinogradParams, stage| winograd::step(ctx, p, stage, &v);
    let (v_max, m_max) = TileChunks::v_m_bytes(g, chunks.per_chunk);
    let uv = ctx.workspace_in(0, chunks.v_offset + v_max)?;
    let m_buf = ctx.workspace_in(1, m_max)?;
    let u = Tensor::from_buffer(ctx, uv.clone(), &[(chunks.u_bytes / 4) as usize])?;
    let base = WinogradParams::new(g, act.alpha());
    let tensors = (input, weight, bias, output);

    let mut arena = UniformArena::new(ctx);
    let weights = base.stage(Stage::Weights, 0, 0);
    let wb = arena.push(&weights);
    let mut blocks = Vec::with_capacity(chunks.chunks as usize);
    for c in 0..chunks.chunks {
        let tile0 = c * chunks.per_chunk;
        let tiles = chunks.per_chunk.min(chunks.tiles - tile0);
        let (pi, po, pg) =
            (base.stage(Stage::Inputs, tile0, tiles), base.stage(Stage::Outputs, tile0, tiles), gemm_params(g, tiles));
        blocks.push((tiles, pi, arena.push(&pi), po, arena.push(&po), arena.push(&pg)));
    }
    let uniforms = arena.finish(ctx)?;

    let mut dispatches: Vec<Dispatch> = Vec::new();
    let ws = range(&uv, (0, chunks.u_bytes));
    dispatches.push(winograd::prepare(
        ctx,
        &uniforms,
        wb,
        &step(&weights, Stage::Weights)?,
        Stage::Weights,
        tensors,
        ws,
    )?);
    for (tiles, pi, ib, po, ob, gb) in blocks {
        let (v_bytes, m_bytes) = TileChunks::v_m_bytes(g, tiles);
        let v = range(&uv, (chunks.v_offset, v_bytes));
        dispatches.push(winograd::prepare(
            ctx,
            &uniforms,
            ib,
            &step(&pi, Stage::Inputs)?,
            Stage::Inputs,
            tensors,
            v.clone(),
        )?);
        let m = Tensor::from_buffer(ctx, m_buf.clone(), &[(m_bytes / 4) as usize])?;
        let gplan = gemm_plan(ctx, g, chunks, tiles)?;
        dispatches.extend(gemm::prepare_planned(ctx, &uniforms, gb, &gplan, &u, v, None, &m, gemm::Aux::None)?);
        let ws = range(&m_buf, (0, m_bytes));
        dispatches.push(winograd::prepare(
            ctx,
            &uniforms,
            ob,
            &step(&po, Stage::Outputs)?,
            Stage::Outputs,
            tensors,
            ws,
        )?);
    }
    record(ctx, encoder, "winograd", &dispatches);
    Ok(dispatches.len())
}

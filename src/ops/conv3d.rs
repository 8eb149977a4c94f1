//! conv3d (PyTorch `torch.nn.functional.conv3d` semantics) on `[N, C, D, H, W]`: `vol2col.wgsl`
//! unfolds chunks of output voxels, then the same dense tiled GEMM as conv2d's `Im2colGemm`
//! (its output written as `[N, Cout, Do·Ho·Wo]`; see [`crate::params::Unfolded`]). Chunked to
//! the workspace budget.

use crate::context::GpuContext;
use crate::error::{Error, Result};
use crate::kernels::{check_recorded, vol2col, write_plan, Step};
use crate::ops::bands::{self, RowGeometry};
use crate::ops::conv2d::{encode_im2col_gemm, im2col_gemm_steps, plan_chunks, Unfold};
use crate::ops::{as_batched, batch, channels, common_dtype, returned_shape, unbatched, widen};
use crate::params::{Conv3dGeometry, Conv3dParams, Padding3d};
use crate::tensor::{DType, Tensor};

/// 3-D convolution, submitted; returns `[N, Cout, Do, Ho, Wo]`.
pub fn conv3d(
    ctx: &GpuContext,
    input: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    params: &Conv3dParams,
) -> Result<Tensor> {
    let g = params.validate(&as_batched(input.shape(), 5), weight.shape(), bias.map(|b| b.shape()))?;
    let output = Tensor::empty_as(ctx, &returned_shape(input.shape(), &g.output_shape()), input.dtype())?;
    let mut encoder = ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("conv3d") });
    conv3d_into(ctx, &mut encoder, input, weight, bias, params, &output)?;
    ctx.submit(encoder)?;
    Ok(output)
}

/// What one conv3d call records, decided from the shapes and parameters before any GPU
/// object ([`plan_conv3d`]; [`conv3d_into`] records it).
#[derive(Clone, Debug, PartialEq)]
pub struct Conv3dPlan {
    /// Every size of the validated conv3d.
    pub geometry: Conv3dGeometry,
    /// Chunks of output voxels of the vol2col workspace (of the first call of a split one).
    pub chunks: u32,
    /// Workspace bytes one chunk uses.
    pub workspace_bytes: u64,
    /// Pieces of the batch run one after another (an input or output beyond one storage
    /// binding); 1 otherwise, 0 for an empty batch.
    pub batch_pieces: u32,
    /// Slabs of output depth per volume (one volume beyond one binding; `batch_pieces` then
    /// counts volumes); 1 otherwise.
    pub depth_slabs: u32,
    /// Chunks of output channels (the weight beyond one binding); 1 otherwise.
    pub channel_chunks: u32,
    /// Every launch, in recording order (a split call's each note says which part).
    pub steps: Vec<Step>,
}

impl std::fmt::Display for Conv3dPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let g = &self.geometry;
        let input = [g.n, g.c_in, g.size[0], g.size[1], g.size[2]].map(|v| v as usize);
        let split = match (self.batch_pieces, self.depth_slabs, self.channel_chunks) {
            (_, _, c) if c > 1 => format!("{c} chunks of output channels"),
            (_, s, _) if s > 1 => format!("each volume in {s} depth slabs"),
            (p, _, _) if p > 1 => format!("{p} batch pieces"),
            _ => "one call".to_string(),
        };
        let chunking = format_args!("{} chunks", self.chunks);
        write_plan(
            f,
            "conv3d",
            &input,
            &g.output_shape(),
            ("vol2col_gemm", &split),
            self.workspace_bytes,
            chunking,
            &self.steps,
        )
    }
}

/// Plans a conv3d of `input` `[N, Cin, D, H, W]` (or unbatched) and `weight`: validates,
/// and lists the launches (vol2col and the dense GEMM per chunk of output voxels), split
/// over the batch, into depth slabs or into chunks of output channels where a tensor
/// exceeds one storage binding. Creates no GPU object. Errors as [`conv3d`].
pub fn plan_conv3d(
    ctx: &GpuContext,
    input: &[usize],
    weight: &[usize],
    bias: Option<&[usize]>,
    params: &Conv3dParams,
) -> Result<Conv3dPlan> {
    let input = as_batched(input, 5);
    let g = params.validate(&input, weight, bias)?;
    let mut plan = Conv3dPlan {
        geometry: g,
        chunks: 0,
        workspace_bytes: 0,
        batch_pieces: 1,
        depth_slabs: 1,
        channel_chunks: 1,
        steps: Vec::new(),
    };
    let n = g.n as usize;
    if n == 0 {
        plan.batch_pieces = 0;
        return Ok(plan);
    }
    let max = ctx.max_binding();
    let out = g.output_shape();
    let per_image = |s: &[usize]| (s.iter().product::<usize>() / n) as u64 * 4;
    let weight_bytes = weight.iter().product::<usize>() as u64 * 4;
    // (input, weight, bias, params, note) of each call of a split one
    type Part = (Vec<usize>, Vec<usize>, Option<Vec<usize>>, Conv3dParams, String);
    let mut parts: Vec<Part> = Vec::new();
    let bias_of = |co: usize| bias.map(|_| vec![co]);
    if weight_bytes > max {
        channels::check_images("conv3d", weight, weight_bytes, per_image(&input), per_image(&out), max)?;
        let row = weight[1..].iter().product::<usize>() as u64 * 4;
        let limits = channels::Limits::default();
        let chunks = channels::ranges("conv3d", g.groups as u64, g.c_in as u64, g.c_out as u64, row, 4, max, limits)?;
        for c in &chunks {
            let (ci, co) = (c.c_in as usize, c.c_out as usize);
            let p = Conv3dParams { groups: c.groups as u32, ..*params };
            for i in 0..n {
                let note = format!("channels {}..{}, volume {i}", c.c_out0, c.c_out0 + c.c_out);
                let w: Vec<usize> = [co].into_iter().chain(weight[1..].iter().copied()).collect();
                parts.push(([1, ci].into_iter().chain(input[2..].iter().copied()).collect(), w, bias_of(co), p, note));
            }
        }
        plan.batch_pieces = n as u32;
        plan.channel_chunks = chunks.len() as u32;
    } else if per_image(&input) > max || per_image(&out) > max {
        if g.pads_by_mode() {
            return Err(Error::TooLarge(format!(
                "conv3d: one volume beyond one storage binding ({max} bytes) runs in slabs of depth, whose halo \
                 planes read zeros: padding_mode {} needs each volume within one binding",
                g.padding_mode.name()
            )));
        }
        let planes = depth_geometry(&g);
        let slabs = planes.plan("conv3d", max)?;
        for i in 0..n {
            for b in planes.bands(&slabs)? {
                let padding = slab_padding(&g, b.pad_top, b.pad_bottom);
                let x = vec![1, input[1], b.rows_in as usize, input[3], input[4]];
                let note = format!("volume {i}, depth {}..{}", b.oy0, b.oy1);
                parts.push((
                    x,
                    weight.to_vec(),
                    bias.map(<[usize]>::to_vec),
                    Conv3dParams { padding, ..*params },
                    note,
                ));
            }
        }
        plan.batch_pieces = n as u32;
        plan.depth_slabs = slabs.bands as u32;
    } else {
        let pieces =
            batch::plan(ctx, "conv3d", n, &[("input", &input, per_image(&input)), ("output", &out, per_image(&out))])?;
        if pieces.pieces > 1 {
            for n0 in (0..n).step_by(pieces.per_piece) {
                let len = pieces.per_piece.min(n - n0);
                let x = [len].into_iter().chain(input[1..].iter().copied()).collect();
                parts.push((
                    x,
                    weight.to_vec(),
                    bias.map(<[usize]>::to_vec),
                    *params,
                    format!("volumes {n0}..{}", n0 + len),
                ));
            }
            plan.batch_pieces = pieces.pieces as u32;
        }
    }
    if parts.is_empty() {
        let u = g.unfolded();
        let chunks = plan_chunks(ctx, &u)?;
        let unfold =
            |col0, cols| Ok(vec![vol2col::step(ctx, &vol2col::Vol2colParams::new(&g, col0, cols), g.padding_mode)?]);
        plan.steps =
            im2col_gemm_steps(ctx, &u, &chunks, params.activation, bias.is_some(), crate::Layout::Contiguous, unfold)?;
        plan.chunks = chunks.chunks;
        plan.workspace_bytes = chunks.cols as u64 * chunks.rows as u64 * 4;
        return Ok(plan);
    }
    for (k, (x, w, b, p, what)) in parts.into_iter().enumerate() {
        let part = plan_conv3d(ctx, &x, &w, b.as_deref(), &p)?;
        if k == 0 {
            (plan.chunks, plan.workspace_bytes) = (part.chunks, part.workspace_bytes);
        }
        plan.steps.extend(part.steps.into_iter().map(|mut s| {
            s.note = if s.note.is_empty() { what.clone() } else { format!("{what}: {}", s.note) };
            s
        }));
    }
    Ok(plan)
}

/// The depth planes of one volume as [`crate::ops::bands`] cuts them (a plane is a row).
fn depth_geometry(g: &Conv3dGeometry) -> RowGeometry {
    let ([_, h, w], [_, ho, wo]) = (g.size.map(|v| v as u64), g.out.map(|v| v as u64));
    RowGeometry {
        c_in: g.c_in as u64,
        h: g.size[0] as u64,
        w: h * w,
        c_out: g.c_out as u64,
        h_out: g.out[0] as u64,
        w_out: ho * wo,
        span: g.dilation[0] as u64 * (g.kernel[0] as u64 - 1) + 1,
        stride: g.stride[0] as u64,
        pad_top: g.pad_begin[0] as u64,
        elem: 4,
        transposed: false,
        workspace: None,
    }
}

/// A slab's padding: its own front and back depth padding, the volume's on the other axes.
fn slab_padding(g: &Conv3dGeometry, front: u32, back: u32) -> Padding3d {
    let [_, pt, pl] = g.pad_begin;
    let [_, pb, pr] = g.pad_end;
    Padding3d::Explicit { begin: [front, pt, pl], end: [back, pb, pr] }
}

/// Records into the caller's encoder; writes `output`.
pub fn conv3d_into(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    input: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    params: &Conv3dParams,
    output: &Tensor,
) -> Result<()> {
    if let Some(v) = unbatched(5, &[(input, "input"), (output, "output")])? {
        return conv3d_into(ctx, encoder, &v[0], weight, bias, params, &v[1]);
    }
    let g = params.validate(input.shape(), weight.shape(), bias.map(|b| b.shape()))?;
    if output.shape() != g.output_shape() {
        return Err(Error::Buffer {
            what: "output",
            reason: format!("shape {:?}, expected {:?}", output.shape(), g.output_shape()),
        });
    }
    for (t, what) in [(input, "input"), (weight, "weight"), (output, "output")] {
        t.check_device(ctx, what)?;
    }
    if let Some(b) = bias {
        b.check_device(ctx, "bias")?;
    }
    let dtype = common_dtype("conv3d", input, &[(Some(weight), "weight"), (bias, "bias"), (Some(output), "output")])?;
    if dtype == DType::F16 {
        let (ins, outs) = ([Some(input), Some(weight), bias], [Some(output)]);
        return widen::with_f32(ctx, encoder, "conv3d", &ins, &outs, |e, i, o| {
            let [x, w, y] = [&i[0], &i[1], &o[0]].map(|t| t.as_ref().expect("given"));
            conv3d_into(ctx, e, x, w, i[2].as_ref(), params, y)
        });
    }
    let plan = plan_conv3d(ctx, input.shape(), weight.shape(), bias.map(|b| b.shape()), params)?;
    let mut recorded = 0;
    if plan.channel_chunks > 1 {
        let (layout, limits) = (channels::Layout::OutIn, channels::Limits::default());
        channels::for_each_chunk(
            ctx,
            encoder,
            "conv3d",
            layout,
            g.groups,
            input,
            weight,
            bias,
            output,
            limits,
            |encoder, c| {
                let p = Conv3dParams { groups: c.groups, ..*params };
                recorded += record_conv3d(ctx, encoder, c.input, c.weight, c.bias, &p, c.output)?;
                Ok(())
            },
        )?;
    } else if plan.depth_slabs > 1 {
        // Each volume in slabs of output depth ([`crate::ops::bands`], a depth plane as the
        // row): bit-identical to one call.
        let planes = depth_geometry(&g);
        let slabs = planes.plan("conv3d", ctx.max_binding())?;
        let ([_, h, w], [_, ho, wo]) = (g.size.map(|v| v as usize), g.out.map(|v| v as usize));
        for i in 0..g.n as usize {
            let (x, y) = (input.narrow_batch(i, 1)?, output.narrow_batch(i, 1)?);
            bands::for_each_band(ctx, encoder, &planes, &slabs, &x, &y, bands::Role::Out, |encoder, x, y, band| {
                let x = x.reshape(&[1, g.c_in as usize, x.shape()[2], h, w])?;
                let y = y.reshape(&[1, g.c_out as usize, y.shape()[2], ho, wo])?;
                let padding = slab_padding(&g, band.pad_top, band.pad_bottom);
                recorded += record_conv3d(ctx, encoder, &x, weight, bias, &Conv3dParams { padding, ..*params }, &y)?;
                Ok(())
            })?;
        }
    } else if plan.batch_pieces > 0 {
        let batched = [batch::input(input, "input"), batch::output(output, "output")];
        let pieces = batch::pieces(ctx, "conv3d", &batched)?;
        batch::for_each_piece(ctx, encoder, &pieces, &batched, |encoder, t| {
            recorded += record_conv3d(ctx, encoder, &t[0], weight, bias, params, &t[1])?;
            Ok(())
        })?;
    }
    check_recorded("conv3d", recorded, &plan.steps)
}

/// Records the conv of tensors that each fit one binding; returns the number of launches.
fn record_conv3d(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    input: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    params: &Conv3dParams,
    output: &Tensor,
) -> Result<usize> {
    let g = params.validate(input.shape(), weight.shape(), bias.map(|b| b.shape()))?;
    let u = g.unfolded();
    let plan = plan_chunks(ctx, &u)?;
    // The GEMM reads the weight [Cout, Cin/G, kd, kh, kw] as [Cout, Cin/G·kd·kh·kw] and writes
    // the output as [N, Cout, Do·Ho·Wo]: the same bytes.
    let w2 = weight.reshape(&[u.c_out as usize, (u.rows / u.groups) as usize])?;
    let o2 = output.reshape(&[u.n as usize, u.c_out as usize, u.pixels_per_image as usize])?;
    let unfold = Unfold::Vol2col { input, geometry: g };
    ctx.scoped(|| encode_im2col_gemm(ctx, encoder, &u, &plan, params.activation, unfold, &w2, bias, &o2))?
}

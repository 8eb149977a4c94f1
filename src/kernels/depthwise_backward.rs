//! `shaders/depthwise_backward.wgsl`: the gradients of a depthwise conv (one input channel per
//! group), grad_input by a gather over the taps and grad_weight by one fixed-order reduction
//! per weight element.

use crate::context::GpuContext;
use crate::error::Result;
use crate::kernels::{fold_grid, range, record, uniform_block, whole, Dispatch, Step, UniformArena};
use crate::params::Conv2dGeometry;
use crate::shaders::{Overrides, ShaderId};
use crate::tensor::Tensor;

uniform_block! {
    /// Twin of `DwBackParams` in `shaders/depthwise_backward.wgsl`.
    DwBackParams {
        c_in, h, w, c_out, kh, kw, stride_h, stride_w, dil_h, dil_w, pad_top, pad_left, h_out, w_out,
        mult, n, total, quads, tiles, rows, strip, strips, my, mx,
    }
}

/// Invocations per workgroup of both kernels.
const WG: u64 = 64;
/// The shader's `WIN_MAX` (longest row window) and `TAPS_MAX` (taps per grad_weight chunk).
const WIN_MAX: u64 = 32;
const TAPS_MAX: u64 = 25;

/// grad_input's dy window per block: (rows, columns) of dy the SH·SW phases of four column
/// positions of a block reach (the shader's `nr` and `nc`).
fn input_window(g: &Conv2dGeometry) -> (u64, u64) {
    let span = |k: u32, s: u32, d: u32, pad: u32| {
        let (k, s, d, res) = (k as i64, s as i64, d as i64, (pad % s) as i64);
        let first = (res - (k - 1) * d).div_euclid(s);
        ((s - 1 + res).div_euclid(s) - first + 1) as u64
    };
    let rows = span(g.kh, g.stride[0], g.dilation[0], g.pads.top);
    let cols = span(g.kw, g.stride[1], g.dilation[1], g.pads.left) + 3;
    (rows, cols)
}

/// grad_weight's x window: the inputs four adjacent outputs read along a row.
fn weight_window(g: &Conv2dGeometry) -> u64 {
    3 * g.stride[1] as u64 + (g.kw as u64 - 1) * g.dilation[1] as u64 + 1
}

/// The shader's `BLOCK_WIN_MAX`: dy elements a block's window holds.
const BLOCK_WIN_MAX: u64 = 32;

/// grad_input runs in blocks of every stride phase, every tap test a constant, where the
/// block's window fits and the strides are at most 2 (the shader's four accumulators; larger
/// strides are rare in depthwise convs).
fn input_blocks(g: &Conv2dGeometry) -> bool {
    let (rows, cols) = input_window(g);
    rows * cols <= BLOCK_WIN_MAX && g.stride[0] <= 2 && g.stride[1] <= 2
}

/// grad_weight's kernel size, horizontal stride and dilation as constants where its window
/// fits and its taps make one chunk.
fn weight_specialised(g: &Conv2dGeometry) -> bool {
    weight_window(g) <= WIN_MAX && (g.kh as u64 * g.kw as u64) <= TAPS_MAX
}

/// The shader's `RING_MAX`: floats grad_weight's walk holds in its ring of row windows.
const RING_MAX: u64 = 64;

/// x rows one dy row reads: (kh − 1)·dh + 1.
fn ring_rows(g: &Conv2dGeometry) -> u64 {
    (g.kh as u64 - 1) * g.dilation[0] as u64 + 1
}

/// grad_weight walks down columns where it is specialised and its ring of row windows fits.
fn weight_walk(g: &Conv2dGeometry) -> bool {
    weight_specialised(g) && ring_rows(g) * weight_window(g) <= RING_MAX
}

/// Loop turns of grad_weight's walk: (once per strip: the column tests and the rows it
/// starts with; per dy row: its new rows, its quad, every (tap, output) and the shift of the
/// kept rows).
fn weight_walk_turns(g: &Conv2dGeometry) -> (u64, u64) {
    let (r, win) = (ring_rows(g), weight_window(g));
    let keep = r - (g.stride[0] as u64).min(r);
    let per_row = 1 + (r - keep) * (1 + win) + 4 + g.kh as u64 * (1 + g.kw as u64 * 5) + keep * (1 + win);
    (1 + win + keep * (1 + win), per_row)
}

/// grad_weight's walk: dy rows per strip and strips per image column. Of the lengths that keep
/// an invocation's loop turns within `budget` (1 where none does), the one whose busiest
/// invocation loads the fewest rows over the ⌈strips·columns / 64⌉ strips it walks: the
/// R − sh rows a strip starts with, then sh per dy row and its dy quad.
fn weight_strips(g: &Conv2dGeometry, budget: u64) -> (u32, u32) {
    let r = ring_rows(g);
    let step = (g.stride[0] as u64).min(r);
    let columns = g.n as u64 * g.w_out.div_ceil(4) as u64;
    let (once, per_row) = weight_walk_turns(g);
    let most = (budget.saturating_sub(once + 2 * (WG + 8)) / per_row).clamp(1, g.h_out.max(1) as u64);
    let cost = |l: u64| (columns * (g.h_out as u64).div_ceil(l)).div_ceil(WG) * (r - step + l * (step + 1));
    let len = (1..=most).min_by_key(|&l| (cost(l), std::cmp::Reverse(l))).unwrap_or(1) as u32;
    (len, g.h_out.div_ceil(len))
}

/// grad_weight's launch also writes grad_bias (the dy its walk reads anyway) where asked for:
/// then no `channel_sum` launch.
pub(crate) fn fuses_bias(g: &Conv2dGeometry) -> bool {
    weight_walk(g)
}

/// The shader's override constants: `[KH, KW, SW, DW]`, then grad_input's `[SH, DH, RY, RX,
/// MULT]` (0: read at run time, or not in blocks).
pub(crate) fn overrides([kh, kw, sw, dw]: [u32; 4], [sh, dh, ry, rx, mult]: [u32; 5]) -> Overrides {
    let mut ov = Overrides::none();
    for (name, v) in [("KH", kh), ("KW", kw), ("SW", sw), ("DW", dw), ("SH", sh), ("DH", dh), ("RY", ry), ("RX", rx)] {
        ov = ov.with(name, v as f64);
    }
    ov.with("MULT", mult as f64)
}

/// Loop turns of one grad_input invocation (nested loops counted at every turn): in blocks,
/// the window's column tests, then per channel multiple the window's rows and elements and
/// every (phase, tap, element), then the block's stores; else per channel multiple, tap
/// row, tap and element, then the 4 stores.
pub(crate) fn grad_input_turns(g: &Conv2dGeometry) -> u64 {
    let mult = (g.c_out / g.c_in) as u64;
    let (kh, kw) = (g.kh as u64, g.kw as u64);
    if input_blocks(g) {
        let (rows, cols) = input_window(g);
        let taps = 4 * kh * (1 + 2 * kw * 5);
        cols + mult * (1 + rows * (1 + cols) + taps) + 4 * 5
    } else {
        mult * (1 + kh * (1 + kw * 5)) + 4
    }
}

/// Loop turns of one grad_weight invocation under a loop budget of `budget`: per chunk of
/// taps, its share of the items (walking: ⌈strips / 64⌉ strips of a quad column, see
/// `weight_walk_turns`; otherwise its 1/64 of the items, specialised: four outputs, each
/// turning over the tap rows, windows and taps; else one output pixel turning over the
/// chunk's taps), then the stores and the reduction (a tree of 63 adds in 6 levels in the
/// invocations that sum a tap).
pub(crate) fn grad_weight_turns(g: &Conv2dGeometry, budget: u64) -> u64 {
    let taps = (g.kh * g.kw) as u64;
    let rows = g.n as u64 * g.h_out as u64;
    let chunk = taps.min(TAPS_MAX);
    let items = if weight_walk(g) {
        let (len, strips) = weight_strips(g, budget);
        let (once, per_row) = weight_walk_turns(g);
        let count = g.n as u64 * strips as u64 * g.w_out.div_ceil(4) as u64;
        count.div_ceil(WG) * (once + len as u64 * per_row)
    } else if weight_specialised(g) {
        (rows * g.w_out.div_ceil(4) as u64).div_ceil(WG) * (5 + g.kh as u64 * (1 + weight_window(g) + g.kw as u64 * 5))
    } else {
        (rows * g.w_out as u64).div_ceil(WG) * (1 + chunk)
    };
    taps.div_ceil(TAPS_MAX) * (1 + items + chunk + 6 + WG)
}

/// One launch: kernel, override constants, uniform block, workgroups and what it computes.
struct Launch {
    id: ShaderId,
    overrides: Overrides,
    params: DwBackParams,
    workgroups: u64,
    note: String,
}

/// The launches of grad_input (one: in blocks of every stride phase where they fit) and of
/// grad_weight (one workgroup per output channel; with grad_bias where `bias` and
/// [`fuses_bias`]), as `which` (input, weight, bias) asks.
fn launches(g: &Conv2dGeometry, (input, weight, bias): (bool, bool, bool), half: bool, budget: u64) -> Vec<Launch> {
    let base = DwBackParams {
        c_in: g.c_in,
        h: g.h,
        w: g.w,
        c_out: g.c_out,
        kh: g.kh,
        kw: g.kw,
        stride_h: g.stride[0],
        stride_w: g.stride[1],
        dil_h: g.dilation[0],
        dil_w: g.dilation[1],
        pad_top: g.pads.top,
        pad_left: g.pads.left,
        h_out: g.h_out,
        w_out: g.w_out,
        mult: g.c_out / g.c_in,
        n: g.n,
        ..Default::default()
    };
    let (gi, gw) = if half {
        (ShaderId::DepthwiseGradInputHalf, ShaderId::DepthwiseGradWeightHalf)
    } else {
        (ShaderId::DepthwiseGradInput, ShaderId::DepthwiseGradWeight)
    };
    let planes = g.n * g.c_in;
    let [sh, sw] = g.stride;
    let kernel = [g.kh, g.kw, sw, g.dilation[1]];
    let mut out = Vec::new();
    if input && input_blocks(g) {
        // blocks of sh rows and 4·sw columns: rows·quads ≤ a plane's elements, which fit one
        // binding (no overflow)
        let rows = g.h.div_ceil(sh);
        let quads = g.w.div_ceil(4 * sw);
        let tiles = (rows * quads).div_ceil(WG as u32);
        let (pt, pl) = (g.pads.top, g.pads.left);
        out.push(Launch {
            id: gi,
            overrides: overrides(kernel, [sh, g.dilation[0], pt % sh, pl % sw, base.mult]),
            params: DwBackParams { total: planes * tiles, quads, tiles, rows, my: pt / sh, mx: pl / sw, ..base },
            workgroups: planes as u64 * tiles as u64,
            note: "grad_input, depthwise, blocks of every stride phase".into(),
        });
    } else if input {
        // column phases r < min(sw, W); H·min(sw, W)·quads ≤ H·(W/4 + 2·W) items: no
        // overflow in u32 for any plane that fits one binding
        let quads = g.w.div_ceil(sw).div_ceil(4);
        let tiles = (g.h * sw.min(g.w) * quads).div_ceil(WG as u32);
        out.push(Launch {
            id: gi,
            overrides: overrides([0; 4], [0; 5]),
            params: DwBackParams { total: planes * tiles, quads, tiles, ..base },
            workgroups: planes as u64 * tiles as u64,
            note: "grad_input, depthwise".into(),
        });
    }
    if weight {
        let spec = if weight_specialised(g) { kernel } else { [0; 4] };
        // the masks of a row's last quad compiled out where there is none
        let full = weight_specialised(g) && g.w_out % 4 == 0;
        let (vertical, (strip, strips)) =
            if weight_walk(g) { ([sh, g.dilation[0], 0, 0, 0], weight_strips(g, budget)) } else { ([0; 5], (0, 0)) };
        out.push(Launch {
            id: gw,
            overrides: overrides(spec, vertical).flag("QUADS_FULL", full).flag("BIAS_GRAD", bias && fuses_bias(g)),
            params: DwBackParams { total: g.c_out, quads: g.w_out.div_ceil(4), strip, strips, ..base },
            workgroups: g.c_out as u64,
            note: if bias && fuses_bias(g) { "grad_weight and grad_bias, depthwise" } else { "grad_weight, depthwise" }
                .into(),
        });
    }
    out
}

/// The steps [`record_backward`] records when asked for grad_input and grad_weight as `which` says.
pub(crate) fn steps(ctx: &GpuContext, g: &Conv2dGeometry, which: (bool, bool, bool), half: bool) -> Result<Vec<Step>> {
    launches(g, which, half, ctx.config().loop_budget as u64)
        .into_iter()
        .map(|l| {
            Ok(Step {
                shader: l.id,
                overrides: l.overrides,
                workgroups: fold_grid(l.workgroups, ctx.max_workgroups_per_dim())?,
                note: l.note,
            })
        })
        .collect()
}

/// grad_input, grad_weight and grad_bias of a depthwise conv (`shaders/depthwise_backward.wgsl`),
/// f16 storage when `half`; each only where given (grad_bias only with grad_weight and where
/// [`fuses_bias`]). Returns the number of launches.
#[allow(clippy::too_many_arguments)]
pub(crate) fn record_backward(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    g: &Conv2dGeometry,
    input: &Tensor,
    weight: &Tensor,
    grad_output: &Tensor,
    (grad_input, grad_weight, grad_bias): (Option<&Tensor>, Option<&Tensor>, Option<&Tensor>),
    half: bool,
) -> Result<usize> {
    ctx.scoped(|| -> Result<usize> {
        let launches = launches(
            g,
            (grad_input.is_some(), grad_weight.is_some(), grad_bias.is_some()),
            half,
            ctx.config().loop_budget as u64,
        );
        let mut arena = UniformArena::new(ctx);
        let blocks: Vec<_> = launches.iter().map(|l| arena.push(&l.params)).collect();
        let uniforms = arena.finish(ctx)?;
        let mut dispatches = Vec::new();
        for (l, block) in launches.iter().zip(blocks) {
            let (pipeline, bgl) = ctx.pipeline(l.id, &l.overrides)?;
            let fixed = [range(&uniforms, block), whole(input), whole(weight), whole(grad_output)];
            let bind_group = if l.id == ShaderId::DepthwiseGradInput || l.id == ShaderId::DepthwiseGradInputHalf {
                let dx = grad_input.expect("a launch only for a gradient asked for");
                ctx.bind_group(l.id, &bgl, &[fixed.as_slice(), &[whole(dx), ctx.unused_rw(0)]].concat())
            } else {
                let dw = grad_weight.expect("a launch only for a gradient asked for");
                let db = grad_bias.map_or_else(|| ctx.unused_rw(0), whole);
                ctx.bind_group(l.id, &bgl, &[fixed.as_slice(), &[whole(dw), db]].concat())
            };
            let grid = fold_grid(l.workgroups, ctx.max_workgroups_per_dim())?;
            dispatches.push(Dispatch { pipeline, bind_group, grid });
        }
        record(ctx, encoder, "depthwise_backward", &dispatches);
        Ok(dispatches.len())
    })?
}

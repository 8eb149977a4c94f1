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
        mult, n, total, quads, tiles, rows, py, px, my, mx,
    }
}

/// Invocations per workgroup of both kernels.
const WG: u64 = 64;
/// The shader's `WIN_MAX` (longest row window) and `TAPS_MAX` (taps per grad_weight chunk).
const WIN_MAX: u64 = 32;
const TAPS_MAX: u64 = 25;

/// grad_input's dy window: the dy columns four dx elements of one column phase reach.
fn input_window(g: &Conv2dGeometry) -> u64 {
    let (kw, sw, dw) = (g.kw as u64, g.stride[1] as u64, g.dilation[1] as u64);
    ((kw - 1) * dw).div_ceil(sw) + 4
}

/// grad_weight's x window: the inputs four adjacent outputs read along a row.
fn weight_window(g: &Conv2dGeometry) -> u64 {
    3 * g.stride[1] as u64 + (g.kw as u64 - 1) * g.dilation[1] as u64 + 1
}

/// Most stride phases grad_input runs one by one: each is a launch and a pipeline of its
/// own (its constants), so larger strides (rare in depthwise convs) take the one launch
/// that tests every tap at run time instead.
const MOST_PHASES: u32 = 4;

/// grad_input runs phase by phase, every tap test a constant, where its window fits and
/// the stride makes at most `MOST_PHASES` phases.
fn input_phased(g: &Conv2dGeometry) -> bool {
    input_window(g) <= WIN_MAX && g.stride[0] as u64 * g.stride[1] as u64 <= MOST_PHASES as u64
}

/// grad_weight's kernel size, horizontal stride and dilation as constants where its window
/// fits and its taps make one chunk.
fn weight_specialised(g: &Conv2dGeometry) -> bool {
    weight_window(g) <= WIN_MAX && (g.kh as u64 * g.kw as u64) <= TAPS_MAX
}

/// The shader's override constants: `[KH, KW, SW, DW]`, then grad_input's `[SH, DH, RY, RX,
/// MULT]` (0: read at run time, or not phased).
pub(crate) fn overrides([kh, kw, sw, dw]: [u32; 4], [sh, dh, ry, rx, mult]: [u32; 5]) -> Overrides {
    let mut ov = Overrides::none();
    for (name, v) in [("KH", kh), ("KW", kw), ("SW", sw), ("DW", dw), ("SH", sh), ("DH", dh), ("RY", ry), ("RX", rx)] {
        ov = ov.with(name, v as f64);
    }
    ov.with("MULT", mult as f64)
}

/// Loop turns of one grad_input invocation (nested loops counted at every turn): phased, the
/// window's column tests, then per channel multiple and tap row the window and every (tap,
/// element); else per channel multiple, tap row, tap and element; then the 4 stores.
pub(crate) fn grad_input_turns(g: &Conv2dGeometry) -> u64 {
    let mult = (g.c_out / g.c_in) as u64;
    let kw = g.kw as u64;
    let taps = if input_phased(g) {
        let window = input_window(g);
        window + mult * (1 + g.kh as u64 * (1 + window + kw * 5))
    } else {
        mult * (1 + g.kh as u64 * (1 + kw * 5))
    };
    taps + 4
}

/// Loop turns of one grad_weight invocation: per chunk of taps, its 1/64 of the items
/// (specialised: four outputs, each turning over the tap rows, windows and taps; else one
/// output pixel turning over the chunk's taps), then the stores and the reduction (a tree of
/// 63 adds in 6 levels in the invocations that sum a tap).
pub(crate) fn grad_weight_turns(g: &Conv2dGeometry) -> u64 {
    let taps = (g.kh * g.kw) as u64;
    let rows = g.n as u64 * g.h_out as u64;
    let chunk = taps.min(TAPS_MAX);
    let items = if weight_specialised(g) {
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

/// The launches of grad_input (one per phase (py, px) of dx when phased, else one) and of
/// grad_weight (one workgroup per output channel), as `which` asks.
fn launches(g: &Conv2dGeometry, (input, weight): (bool, bool), half: bool) -> Vec<Launch> {
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
    if input && input_phased(g) {
        for (py, px) in (0..sh.min(g.h)).flat_map(|py| (0..sw.min(g.w)).map(move |px| (py, px))) {
            let rows = (g.h - py).div_ceil(sh);
            let quads = (g.w - px).div_ceil(sw).div_ceil(4);
            // rows·quads ≤ a plane's elements, which fit one binding: no overflow
            let tiles = (rows * quads).div_ceil(WG as u32);
            let (ty, tx) = (py + g.pads.top, px + g.pads.left);
            out.push(Launch {
                id: gi,
                overrides: overrides(kernel, [sh, g.dilation[0], ty % sh, tx % sw, base.mult]),
                params: DwBackParams {
                    total: planes * tiles,
                    quads,
                    tiles,
                    rows,
                    py,
                    px,
                    my: ty / sh,
                    mx: tx / sw,
                    ..base
                },
                workgroups: planes as u64 * tiles as u64,
                note: format!("grad_input, depthwise, phase ({py}, {px})"),
            });
        }
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
        out.push(Launch {
            id: gw,
            overrides: overrides(spec, [0; 5]).flag("QUADS_FULL", full),
            params: DwBackParams { total: g.c_out, quads: g.w_out.div_ceil(4), ..base },
            workgroups: g.c_out as u64,
            note: "grad_weight, depthwise".into(),
        });
    }
    out
}

/// The steps [`record_backward`] records when asked for grad_input and grad_weight as `which` says.
pub(crate) fn steps(ctx: &GpuContext, g: &Conv2dGeometry, which: (bool, bool), half: bool) -> Result<Vec<Step>> {
    launches(g, which, half)
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

/// grad_input and grad_weight of a depthwise conv (`shaders/depthwise_backward.wgsl`), f16
/// storage when `half`; each only where given. Returns the number of launches.
#[allow(clippy::too_many_arguments)]
pub(crate) fn record_backward(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    g: &Conv2dGeometry,
    input: &Tensor,
    weight: &Tensor,
    grad_output: &Tensor,
    (grad_input, grad_weight): (Option<&Tensor>, Option<&Tensor>),
    half: bool,
) -> Result<usize> {
    ctx.scoped(|| -> Result<usize> {
        let launches = launches(g, (grad_input.is_some(), grad_weight.is_some()), half);
        let mut arena = UniformArena::new(ctx);
        let blocks: Vec<_> = launches.iter().map(|l| arena.push(&l.params)).collect();
        let uniforms = arena.finish(ctx)?;
        let mut dispatches = Vec::new();
        for (l, block) in launches.iter().zip(blocks) {
            let out = if l.id == ShaderId::DepthwiseGradInput || l.id == ShaderId::DepthwiseGradInputHalf {
                grad_input
            } else {
                grad_weight
            };
            let out = out.expect("a launch only for a gradient asked for");
            let (pipeline, bgl) = ctx.pipeline(l.id, &l.overrides)?;
            let bind_group = ctx.bind_group(
                l.id,
                &bgl,
                &[range(&uniforms, block), whole(input), whole(weight), whole(grad_output), whole(out)],
            );
            let grid = fold_grid(l.workgroups, ctx.max_workgroups_per_dim())?;
            dispatches.push(Dispatch { pipeline, bind_group, grid });
        }
        record(ctx, encoder, "depthwise_backward", &dispatches);
        Ok(dispatches.len())
    })?
}

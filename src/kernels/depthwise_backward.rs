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
        mult, n, total, _pad0, _pad1, _pad2,
    }
}

/// Loop turns of one `depthwise_backward.wgsl` grad_input invocation: every tap of every
/// channel multiple.
pub(crate) fn grad_input_turns(g: &Conv2dGeometry) -> u64 {
    let mult = (g.c_out / g.c_in) as u64;
    mult * (1 + g.kh as u64 * (1 + g.kw as u64))
}

/// Loop turns of one grad_weight invocation: per chunk of 25 taps, its 1/64 of the output
/// pixels (each turning over the chunk's taps), then the store and the 6-step tree reduction.
pub(crate) fn grad_weight_turns(g: &Conv2dGeometry) -> u64 {
    let taps = (g.kh * g.kw) as u64;
    let pixels = g.n as u64 * g.h_out as u64 * g.w_out as u64;
    let chunk = taps.min(25);
    taps.div_ceil(25) * (1 + pixels.div_ceil(64) * (1 + chunk) + 8 * (1 + chunk))
}

/// The two kernels and their grids: grad_input one invocation per input element (256 per
/// workgroup), grad_weight one workgroup per output channel.
fn kernels(g: &Conv2dGeometry, half: bool) -> [(ShaderId, u64); 2] {
    let input = g.n as u64 * g.c_in as u64 * g.h as u64 * g.w as u64;
    if half {
        [(ShaderId::DepthwiseGradInputHalf, input.div_ceil(256)), (ShaderId::DepthwiseGradWeightHalf, g.c_out as u64)]
    } else {
        [(ShaderId::DepthwiseGradInput, input.div_ceil(256)), (ShaderId::DepthwiseGradWeight, g.c_out as u64)]
    }
}

/// The steps [`record_backward`] records when asked for grad_input and grad_weight as `which` says.
pub(crate) fn steps(
    ctx: &GpuContext,
    g: &Conv2dGeometry,
    (input, weight): (bool, bool),
    half: bool,
) -> Result<Vec<Step>> {
    let [gi, gw] = kernels(g, half);
    let mut steps = Vec::new();
    for ((id, groups), on, what) in [(gi, input, "grad_input"), (gw, weight, "grad_weight")] {
        if on {
            let workgroups = fold_grid(groups, ctx.max_workgroups_per_dim())?;
            steps.push(Step {
                shader: id,
                overrides: Overrides::none(),
                workgroups,
                note: format!("{what}, depthwise"),
            });
        }
    }
    Ok(steps)
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
    ctx.scoped(|| -> Result<usize> {
        let mut arena = UniformArena::new(ctx);
        // grad_input: one invocation per input element; grad_weight: one workgroup per
        // output channel.
        let pi = DwBackParams { total: input.numel() as u32, ..base };
        let pw = DwBackParams { total: g.c_out, ..base };
        let (bi, bw) = (arena.push(&pi), arena.push(&pw));
        let uniforms = arena.finish(ctx)?;
        let mut dispatches = Vec::new();
        let [gi, gw] = kernels(g, half);
        for (out, (id, groups), block) in [(grad_input, gi, bi), (grad_weight, gw, bw)] {
            let Some(out) = out else { continue };
            let (pipeline, bgl) = ctx.pipeline(id, &Overrides::none())?;
            let bind_group = ctx.bind_group(
                id,
                &bgl,
                &[range(&uniforms, block), whole(input), whole(weight), whole(grad_output), whole(out)],
            );
            dispatches.push(Dispatch { pipeline, bind_group, grid: fold_grid(groups, ctx.max_workgroups_per_dim())? });
        }
        record(ctx, encoder, "depthwise_backward", &dispatches);
        Ok(dispatches.len())
    })?
}

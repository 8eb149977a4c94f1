//! Depthwise-separable block: `pointwise(act_dw(depthwise(x) + b_dw)) + b_pw`, then `act_pw`,
//! as one call (MobileNet's building block). Two ways:
//! - two passes: the depthwise kernel into an intermediate `[N, C·mult, Ho, Wo]` tensor, then
//!   the 1x1 GEMM, in one encoder;
//! - fused: one GEMM whose B loader computes the depthwise output on the fly (`B_DEPTHWISE`), no
//!   intermediate tensor in global memory; each depthwise value is recomputed once per
//!   64-row tile of Cout.

use crate::context::GpuContext;
use crate::error::{Error, Result};
use crate::kernels::gemm::{self, GemmParams, GemmProblem};
use crate::kernels::{record, whole, UniformArena};
use crate::ops::conv2d::conv2d_into;
use crate::ops::{as_batched, batch, check_binding, returned_shape, unbatched};
use crate::params::{Activation, Algorithm, Conv2dParams, Padding};
use crate::tensor::Tensor;

/// Parameters of [`separable_conv2d`]: the depthwise conv's stride, padding and dilation,
/// and the activation after each stage.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SeparableParams {
    pub stride: [u32; 2],
    pub padding: Padding,
    pub dilation: [u32; 2],
    pub depthwise_activation: Activation,
    pub pointwise_activation: Activation,
    /// One fused GEMM instead of two passes (the depthwise activation must then be none,
    /// relu or relu6).
    pub fused: bool,
}

impl Default for SeparableParams {
    fn default() -> Self {
        SeparableParams {
            stride: [1, 1],
            padding: Padding::Valid,
            dilation: [1, 1],
            depthwise_activation: Activation::None,
            pointwise_activation: Activation::None,
            fused: false,
        }
    }
}

impl SeparableParams {
    fn stages(&self, c_in: usize) -> (Conv2dParams, Conv2dParams) {
        let dw = Conv2dParams {
            stride: self.stride,
            padding: self.padding,
            dilation: self.dilation,
            groups: c_in as u32,
            algorithm: Algorithm::Depthwise,
            activation: self.depthwise_activation,
        };
        let pw =
            Conv2dParams { algorithm: Algorithm::Gemm1x1, activation: self.pointwise_activation, ..Default::default() };
        (dw, pw)
    }

    /// Validates input `[N, C, H, W]`, depthwise weight `[C·mult, 1, kh, kw]`, pointwise weight
    /// `[Cout, C·mult, 1, 1]` and the biases; returns (intermediate shape, output shape).
    pub fn validate(
        &self,
        input: &[usize],
        dw_weight: &[usize],
        dw_bias: Option<&[usize]>,
        pw_weight: &[usize],
        pw_bias: Option<&[usize]>,
    ) -> Result<([usize; 4], [usize; 4])> {
        crate::params::check_batched_rank("input", input, 4, "N, C, H, W")?;
        let (dw, pw) = self.stages(input[1]);
        if dw_weight.len() == 4 && dw_weight[1] != 1 {
            return Err(Error::ChannelMismatch(format!(
                "the depthwise weight must be [C·mult, 1, kh, kw], got {dw_weight:?}"
            )));
        }
        let mid = dw.validate(input, dw_weight, dw_bias)?.output_shape();
        if pw_weight.len() == 4 && (pw_weight[2], pw_weight[3]) != (1, 1) {
            return Err(Error::ShapeMismatch {
                what: "pointwise weight",
                expected: vec![pw_weight[0], mid[1], 1, 1],
                got: pw_weight.to_vec(),
            });
        }
        let out = pw.validate(&mid, pw_weight, pw_bias)?.output_shape();
        if self.fused && self.dw_act_code().is_none() {
            return Err(Error::param(
                "depthwise_activation",
                format!(
                    "the fused block applies none, relu or relu6 after the depthwise stage, not {:?}",
                    self.depthwise_activation
                ),
            ));
        }
        Ok((mid, out))
    }

    /// The fused kernel's `DW_ACT` code.
    fn dw_act_code(&self) -> Option<u32> {
        match self.depthwise_activation {
            Activation::None => Some(0),
            Activation::Relu => Some(1),
            Activation::Relu6 => Some(2),
            _ => None,
        }
    }
}

/// The block, submitted; returns `[N, Cout, Ho, Wo]`.
pub fn separable_conv2d(
    ctx: &GpuContext,
    input: &Tensor,
    dw_weight: &Tensor,
    dw_bias: Option<&Tensor>,
    pw_weight: &Tensor,
    pw_bias: Option<&Tensor>,
    params: &SeparableParams,
) -> Result<Tensor> {
    let (_, out) = params.validate(
        &as_batched(input.shape(), 4),
        dw_weight.shape(),
        dw_bias.map(|b| b.shape()),
        pw_weight.shape(),
        pw_bias.map(|b| b.shape()),
    )?;
    let output = Tensor::empty(ctx, &returned_shape(input.shape(), &out))?;
    let mut encoder =
        ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("separable_conv2d") });
    separable_conv2d_into(ctx, &mut encoder, input, dw_weight, dw_bias, pw_weight, pw_bias, params, &output)?;
    ctx.submit(encoder)?;
    Ok(output)
}

/// Records the block into the caller's encoder; writes `output` (`[N, Cout, Ho, Wo]`).
#[allow(clippy::too_many_arguments)]
pub fn separable_conv2d_into(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    input: &Tensor,
    dw_weight: &Tensor,
    dw_bias: Option<&Tensor>,
    pw_weight: &Tensor,
    pw_bias: Option<&Tensor>,
    params: &SeparableParams,
    output: &Tensor,
) -> Result<()> {
    if let Some(v) = unbatched(4, &[(input, "input"), (output, "output")])? {
        return separable_conv2d_into(ctx, encoder, &v[0], dw_weight, dw_bias, pw_weight, pw_bias, params, &v[1]);
    }
    let (_, out) = params.validate(
        input.shape(),
        dw_weight.shape(),
        dw_bias.map(|b| b.shape()),
        pw_weight.shape(),
        pw_bias.map(|b| b.shape()),
    )?;
    if output.shape() != out {
        return Err(Error::Buffer { what: "output", reason: format!("shape {:?}, expected {out:?}", output.shape()) });
    }
    let n = input.shape()[0];
    let image_bytes = |t: &Tensor| (t.numel() / n.max(1)) as u64 * 4;
    let max = ctx.max_binding();
    let beyond = image_bytes(input) > max || image_bytes(output) > max;
    if n > 0 && (beyond || dw_weight.byte_len() > max || pw_weight.byte_len() > max) {
        // One image or a weight beyond one binding: the two passes (fused or not), each a
        // conv2d in row bands or channel chunks, the intermediate in a buffer of its own
        // (the workspace may serve the passes).
        let (mid, _) = params.validate(
            input.shape(),
            dw_weight.shape(),
            dw_bias.map(|b| b.shape()),
            pw_weight.shape(),
            pw_bias.map(|b| b.shape()),
        )?;
        let hidden = Tensor::empty(ctx, &mid)?;
        let (dw, pw) = params.stages(input.shape()[1]);
        conv2d_into(ctx, encoder, input, dw_weight, dw_bias, &dw, &hidden)?;
        conv2d_into(ctx, encoder, &hidden, pw_weight, pw_bias, &pw, output)?;
        return Ok(());
    }
    let batched = [batch::input(input, "input"), batch::output(output, "output")];
    let pieces = batch::pieces(ctx, "separable_conv2d", &batched)?;
    batch::for_each_piece(ctx, encoder, &pieces, &batched, |encoder, t| {
        record_separable(ctx, encoder, &t[0], dw_weight, dw_bias, pw_weight, pw_bias, params, &t[1])
    })
}

/// Records the block over tensors that each fit one binding.
#[allow(clippy::too_many_arguments)]
fn record_separable(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    input: &Tensor,
    dw_weight: &Tensor,
    dw_bias: Option<&Tensor>,
    pw_weight: &Tensor,
    pw_bias: Option<&Tensor>,
    params: &SeparableParams,
    output: &Tensor,
) -> Result<()> {
    let (mid, out) = params.validate(
        input.shape(),
        dw_weight.shape(),
        dw_bias.map(|b| b.shape()),
        pw_weight.shape(),
        pw_bias.map(|b| b.shape()),
    )?;
    let (dw, pw) = params.stages(input.shape()[1]);
    if !params.fused {
        // The intermediate lives in the context's workspace (no allocation per call): neither
        // stage of this path uses the workspace itself, and queue order serialises its users.
        let bytes = mid.iter().product::<usize>() as u64 * 4;
        let hidden = Tensor::from_buffer(ctx, ctx.workspace(bytes)?, &mid)?;
        conv2d_into(ctx, encoder, input, dw_weight, dw_bias, &dw, &hidden)?;
        conv2d_into(ctx, encoder, &hidden, pw_weight, pw_bias, &pw, output)?;
        return Ok(());
    }
    for (t, what) in [(input, "input"), (dw_weight, "dw_weight"), (pw_weight, "pw_weight"), (output, "output")] {
        t.check_device(ctx, what)?;
        t.require_f32("separable_conv2d", what)?;
        check_binding(ctx, t, what)?;
    }
    for t in [dw_bias, pw_bias].into_iter().flatten() {
        t.check_device(ctx, "bias")?;
        t.require_f32("separable_conv2d", "bias")?;
    }
    let g = dw.validate(input.shape(), dw_weight.shape(), None)?;
    let hw = g.h_out * g.w_out;
    let (c_out, c_mid) = (out[1] as u32, mid[1] as u32);
    let p = GemmParams {
        dw_mult: c_mid / g.c_in,
        ..GemmParams::new(c_out, g.n * hw, c_mid, 1, hw, 0, c_out * hw).gathering(&g)
    };
    let act = params.dw_act_code().expect("validated above");
    ctx.scoped(|| -> Result<()> {
        let mut arena = UniformArena::new(ctx);
        let block = arena.push(&p);
        let uniforms = arena.finish(ctx)?;
        let dispatches = gemm::prepare_sampling(
            ctx,
            &uniforms,
            block,
            &p,
            GemmProblem::Separable,
            params.pointwise_activation,
            pw_weight,
            whole(input),
            pw_bias,
            output,
            gemm::Aux::Depthwise { weight: dw_weight, bias: dw_bias, act },
        )?;
        record(ctx, encoder, "separable_conv2d", &dispatches);
        Ok(())
    })?
}

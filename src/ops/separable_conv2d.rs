//! Depthwise-separable block: `pointwise(act_dw(depthwise(x) + b_dw)) + b_pw`, then `act_pw`,
//! as one call (MobileNet's building block). Recorded as the depthwise kernel into an
//! intermediate `[N, C·mult, Ho, Wo]` tensor followed by the 1x1 GEMM, in one encoder.

use crate::context::GpuContext;
use crate::error::{Error, Result};
use crate::ops::conv2d::conv2d_into;
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
}

impl Default for SeparableParams {
    fn default() -> Self {
        SeparableParams {
            stride: [1, 1],
            padding: Padding::Valid,
            dilation: [1, 1],
            depthwise_activation: Activation::None,
            pointwise_activation: Activation::None,
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
        crate::params::check_rank("input", input, 4, "N, C, H, W")?;
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
        Ok((mid, out))
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
    let (mid, out) = params.validate(
        input.shape(),
        dw_weight.shape(),
        dw_bias.map(|b| b.shape()),
        pw_weight.shape(),
        pw_bias.map(|b| b.shape()),
    )?;
    let (dw, pw) = params.stages(input.shape()[1]);
    let hidden = Tensor::empty(ctx, &mid)?;
    let output = Tensor::empty(ctx, &out)?;
    let mut encoder =
        ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("separable_conv2d") });
    conv2d_into(ctx, &mut encoder, input, dw_weight, dw_bias, &dw, &hidden)?;
    conv2d_into(ctx, &mut encoder, &hidden, pw_weight, pw_bias, &pw, &output)?;
    ctx.submit(encoder)?;
    Ok(output)
}

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
use crate::kernels::{check_recorded, write_plan, Step};
use crate::kernels::{record, whole, UniformArena};
use crate::ops::conv2d::{conv2d_into, plan_conv2d};
use crate::ops::{as_batched, batch, check_binding, returned_shape, unbatched};
use crate::params::{Activation, Algorithm, Conv2dParams, Padding};
use crate::tensor::DType;
use crate::tensor::Tensor;

/// Parameters of [`separable_conv2d`]: the depthwise conv's stride, padding and dilation,
/// and the activation after each stage.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SeparableParams {
    /// The depthwise conv's `[sh, sw]` (PyTorch `stride`); the pointwise conv's is 1.
    pub stride: [u32; 2],
    /// The depthwise conv's padding (PyTorch `padding`); the pointwise conv has none.
    pub padding: Padding,
    /// The depthwise conv's `[dh, dw]` (PyTorch `dilation`).
    pub dilation: [u32; 2],
    /// `act_dw`, after the depthwise conv and its bias.
    pub depthwise_activation: Activation,
    /// `act_pw`, after the pointwise conv and its bias.
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
            ..Default::default()
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
    let output = Tensor::empty_as(ctx, &returned_shape(input.shape(), &out), input.dtype())?;
    let mut encoder =
        ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("separable_conv2d") });
    separable_conv2d_into(ctx, &mut encoder, input, dw_weight, dw_bias, pw_weight, pw_bias, params, &output)?;
    ctx.submit(encoder)?;
    Ok(output)
}

/// What one separable_conv2d call records, decided from the shapes and parameters before
/// any GPU object ([`plan_separable_conv2d`]; [`separable_conv2d_into`] records it).
#[derive(Clone, Debug, PartialEq)]
pub struct SeparablePlan {
    /// `[N, C, H, W]`
    pub input: Vec<usize>,
    /// `[N, Cout, Ho, Wo]`
    pub output: Vec<usize>,
    /// Whether the fused GEMM runs; else the two passes, each a conv2d (with its own splits).
    pub fused: bool,
    /// Pieces of the batch run one after another; 1 otherwise, 0 for an empty batch.
    pub batch_pieces: u32,
    /// Every launch, in recording order (each note names its pass or piece).
    pub steps: Vec<Step>,
}

impl std::fmt::Display for SeparablePlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let how = if self.fused { "fused" } else { "two_pass" };
        let split =
            if self.batch_pieces > 1 { format!("{} batch pieces", self.batch_pieces) } else { "one call".into() };
        write_plan(f, "separable_conv2d", &self.input, &self.output, (how, &split), 0, format_args!(""), &self.steps)
    }
}

/// Plans the block on these shapes (input batched or unbatched): validates and lists the
/// launches: the fused GEMM, or the two passes' conv2d plans (the two passes also where an
/// image or a weight exceeds one storage binding), per batch piece where the batch does.
/// Creates no GPU object. Errors as [`separable_conv2d`].
pub fn plan_separable_conv2d(
    ctx: &GpuContext,
    input: &[usize],
    dw_weight: &[usize],
    dw_bias: Option<&[usize]>,
    pw_weight: &[usize],
    pw_bias: Option<&[usize]>,
    params: &SeparableParams,
) -> Result<SeparablePlan> {
    let input = as_batched(input, 4);
    let (mid, out) = params.validate(&input, dw_weight, dw_bias, pw_weight, pw_bias)?;
    let mut plan = SeparablePlan {
        input: input.clone(),
        output: out.to_vec(),
        fused: params.fused,
        batch_pieces: 1,
        steps: Vec::new(),
    };
    let n = input[0];
    if n == 0 {
        plan.batch_pieces = 0;
        return Ok(plan);
    }
    let (dw, pw) = params.stages(input[1]);
    let two_passes = |x: &[usize], m: &[usize], what: &str| -> Result<Vec<Step>> {
        let a = plan_conv2d(ctx, x, dw_weight, dw_bias, DType::F32, &dw)?;
        let b = plan_conv2d(ctx, m, pw_weight, pw_bias, DType::F32, &pw)?;
        let named = |pass: &str, mut s: Step| {
            s.note = [what, pass, &s.note].iter().filter(|t| !t.is_empty()).copied().collect::<Vec<_>>().join(": ");
            s
        };
        Ok(a.steps
            .into_iter()
            .map(|s| named("depthwise", s))
            .chain(b.steps.into_iter().map(|s| named("pointwise", s)))
            .collect())
    };
    let bytes = |s: &[usize]| s.iter().product::<usize>() as u64 * 4;
    let (per_in, per_out) = (bytes(&input) / n as u64, bytes(&out) / n as u64);
    if beyond_one_binding(ctx, &input, &out, dw_weight, pw_weight) {
        plan.fused = false;
        plan.steps = two_passes(&input, &mid, "")?;
        return Ok(plan);
    }
    let pieces = batch::plan(ctx, "separable_conv2d", n, &[("input", &input, per_in), ("output", &out, per_out)])?;
    plan.batch_pieces = pieces.pieces as u32;
    for n0 in (0..n).step_by(pieces.per_piece) {
        let len = pieces.per_piece.min(n - n0);
        let what = if pieces.pieces > 1 { format!("images {n0}..{}", n0 + len) } else { String::new() };
        let (x, m) = ([len, input[1], input[2], input[3]], [len, mid[1], mid[2], mid[3]]);
        if !params.fused {
            plan.steps.extend(two_passes(&x, &m, &what)?);
            continue;
        }
        let (p, ov) = fused_gemm(params, &x, dw_weight, dw_bias.is_some(), pw_weight, pw_bias.is_some())?;
        let gplan = gemm::plan(
            ctx,
            &p,
            GemmProblem::Separable,
            ov,
            false,
            Some((0, bytes(&x))),
            len * out[1] * out[2] * out[3],
        )?;
        plan.steps.extend(gplan.steps(if what.is_empty() { "fused" } else { &what }));
    }
    Ok(plan)
}

/// Whether one image (of `input` or `output`) or a weight exceeds one storage binding: the
/// block then runs as its two passes, each a conv2d that splits itself, the intermediate in
/// a buffer of its own.
fn beyond_one_binding(ctx: &GpuContext, input: &[usize], output: &[usize], dw: &[usize], pw: &[usize]) -> bool {
    let bytes = |s: &[usize]| s.iter().product::<usize>() as u64 * 4;
    let n = input[0].max(1) as u64;
    let max = ctx.max_binding();
    input[0] > 0 && (bytes(input) / n > max || bytes(output) / n > max || bytes(dw) > max || bytes(pw) > max)
}

/// The fused GEMM's parameters and overrides for input `x`: C = pw · (depthwise of x), M =
/// Cout, N = output pixels, K = C·mult, B computed by the depthwise loader.
fn fused_gemm(
    params: &SeparableParams,
    x: &[usize],
    dw_weight: &[usize],
    has_dw_bias: bool,
    pw_weight: &[usize],
    has_pw_bias: bool,
) -> Result<(GemmParams, crate::shaders::Overrides)> {
    let (dw, _) = params.stages(x[1]);
    let g = dw.validate(x, dw_weight, None)?;
    let hw = g.h_out * g.w_out;
    let (c_out, c_mid) = (pw_weight[0] as u32, dw_weight[0] as u32);
    let mut p = GemmParams::new(c_out, g.n * hw, c_mid, 1, hw, 0, c_out * hw).gathering(&g);
    p.dw.dw_mult = c_mid / g.c_in;
    let act = params.dw_act_code().ok_or_else(|| Error::Internal("fused block with another activation".into()))?;
    let aux = gemm::overrides(GemmProblem::Separable, params.pointwise_activation, has_pw_bias, &gemm::Aux::None);
    Ok((p, aux.flag("HAS_DW_BIAS", has_dw_bias).with("DW_ACT", act as f64)))
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
    let others = [
        (Some(dw_weight), "dw_weight"),
        (dw_bias, "dw_bias"),
        (Some(pw_weight), "pw_weight"),
        (pw_bias, "pw_bias"),
        (Some(output), "output"),
    ];
    if crate::ops::common_dtype("separable_conv2d", input, &others)? == DType::F16 {
        let ins = [Some(input), Some(dw_weight), dw_bias, Some(pw_weight), pw_bias];
        return crate::ops::widen::with_f32(ctx, encoder, "separable_conv2d", &ins, &[Some(output)], |e, i, o| {
            let [x, dw, pw, y] = [&i[0], &i[1], &i[3], &o[0]].map(|t| t.as_ref().expect("given"));
            separable_conv2d_into(ctx, e, x, dw, i[2].as_ref(), pw, i[4].as_ref(), params, y)
        });
    }
    let plan = plan_separable_conv2d(
        ctx,
        input.shape(),
        dw_weight.shape(),
        dw_bias.map(|b| b.shape()),
        pw_weight.shape(),
        pw_bias.map(|b| b.shape()),
        params,
    )?;
    let recorded = if beyond_one_binding(ctx, input.shape(), output.shape(), dw_weight.shape(), pw_weight.shape()) {
        // One image or a weight beyond one binding: the two passes, each a conv2d in row
        // bands or channel chunks, the intermediate in a buffer of its own (the workspace
        // may serve the passes).
        let (mid, _) = params.validate(
            input.shape(),
            dw_weight.shape(),
            dw_bias.map(|b| b.shape()),
            pw_weight.shape(),
            pw_bias.map(|b| b.shape()),
        )?;
        let hidden = Tensor::empty(ctx, &mid)?;
        let (dw, pw) = params.stages(input.shape()[1]);
        let a = conv2d_into(ctx, encoder, input, dw_weight, dw_bias, &dw, &hidden)?;
        let b = conv2d_into(ctx, encoder, &hidden, pw_weight, pw_bias, &pw, output)?;
        launches(&a) + launches(&b)
    } else {
        let batched = [batch::input(input, "input"), batch::output(output, "output")];
        let pieces = batch::pieces(ctx, "separable_conv2d", &batched)?;
        let mut recorded = 0;
        batch::for_each_piece(ctx, encoder, &pieces, &batched, |encoder, t| {
            let unfused = SeparableParams { fused: plan.fused, ..*params };
            recorded += record_separable(ctx, encoder, &t[0], dw_weight, dw_bias, pw_weight, pw_bias, &unfused, &t[1])?;
            Ok(())
        })?;
        recorded
    };
    check_recorded("separable_conv2d", recorded, &plan.steps)
}

/// The launches a conv2d pass recorded (conv2d_into checked them against its plan).
fn launches(info: &crate::ops::conv2d::Conv2dInfo) -> usize {
    info.launches as usize
}

/// Records the block over tensors that each fit one binding; returns the number of launches.
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
) -> Result<usize> {
    let (mid, _) = params.validate(
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
        let a = conv2d_into(ctx, encoder, input, dw_weight, dw_bias, &dw, &hidden)?;
        let b = conv2d_into(ctx, encoder, &hidden, pw_weight, pw_bias, &pw, output)?;
        return Ok(launches(&a) + launches(&b));
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
    let (p, _) =
        fused_gemm(params, input.shape(), dw_weight.shape(), dw_bias.is_some(), pw_weight.shape(), pw_bias.is_some())?;
    let act = params.dw_act_code().expect("validated above");
    ctx.scoped(|| -> Result<usize> {
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
        Ok(dispatches.len())
    })?
}

//! `wgconv explain`: the arithmetic people get wrong most, for one layer or a stack: output
//! shape, parameters, MACs and FLOPs, the receptive field and its jump, the bytes of every
//! tensor and workspace, how a call splits over storage bindings, the algorithm `Auto`
//! picks on this adapter and why, and the launches its plan records ([`crate::plan_conv2d`],
//! [`crate::ops::conv2d_backward::plan_conv2d_backward`], [`crate::ops::pool2d::plan_pool2d`],
//! [`crate::ops::conv_transpose2d::plan_conv_transpose2d`],
//! [`crate::ops::deform_conv2d::plan_deform_conv2d`], [`crate::ops::conv3d::plan_conv3d`]).
//!
//! Receptive field of a stack, per axis: the stack-input pixels one output pixel depends on,
//! from the first to the last (gaps of a dilation included), the widest over output
//! positions. It is found by carrying the positions output `o` reads back through each layer: a
//! conv or pooling (kernel k, dilation d, stride s, leading pad p) reads `x·s − p + t·d` for
//! each position x and tap t (for forward layers alone the span grows as `rf = rf_prev +
//! d·(k−1)·jump_prev`); a transposed conv the inputs `i` with `i·s − p + t·d = x` (which
//! differ from one output phase to the next: hence the widest; and some outputs receive no
//! input, which is why positions and not their interval are carried). The jump (stack-input
//! pixels between neighbouring outputs) is the product of the strides over that of the
//! transposed convs' strides: ½ after one stride-2 upsampling.

use crate::context::GpuContext;
use crate::error::{Error, Result};
use crate::kernels::Step;
use crate::ops::pool2d::PoolMode;
use crate::params::{
    Algorithm, Conv1dParams, Conv2dParams, Conv3dParams, ConvTranspose2dParams, Padding, Pool2dParams,
};
use crate::tensor::DType;

/// One layer's numbers (the receptive field and jump are cumulative over the stack so far).
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "cli", derive(serde::Serialize))]
pub struct LayerFacts {
    /// The op (`conv2d`, `conv_transpose2d`, `max_pool2d`, ...) with its arguments.
    pub layer: String,
    /// The input's shape (`[N, C, H, W]`; `[N, C, L]` for conv1d, `[N, C, D, H, W]` for conv3d).
    pub input_shape: Vec<usize>,
    /// Out: the layer's output (a backward pass: grad_output's shape, the forward's output).
    pub output_shape: Vec<usize>,
    /// Weight elements plus bias elements (0 for a pooling).
    pub parameters: u64,
    /// Multiply-adds (a pooling: window reads; a backward pass: grad_input's and
    /// grad_weight's, each the forward's).
    pub macs: u64,
    /// 2·MACs for a conv (as `wgconv bench` counts), MACs for a pooling.
    pub flops: u64,
    /// Stack-input pixels one output pixel depends on, per spatial axis (rows, columns; a
    /// conv1d's one, a conv3d's three), through the stack ([`Field::receptive_field`]; a
    /// deform_conv2d's without its offsets, which move the taps anywhere).
    pub receptive_field: Vec<u64>,
    /// Stack-input pixels between neighbouring outputs, per spatial axis ([`Field::jump`]).
    pub jump: Vec<f64>,
    /// The stack up to this layer: the next layer's `prev`.
    #[cfg_attr(feature = "cli", serde(skip))]
    pub field: Field,
    /// Bytes read: the input (a backward pass: the input and grad_output).
    pub input_bytes: u64,
    /// Bytes of the weight and bias.
    pub weight_bytes: u64,
    /// Bytes written: the output (a backward pass: every gradient).
    pub output_bytes: u64,
    /// The largest workspace one launch uses.
    pub workspace_bytes: u64,
    /// The algorithm that runs and the rule that chose it.
    pub algorithm: String,
    /// Why: the rule that chose the algorithm.
    pub reason: String,
    /// How the call is cut to fit the device's storage bindings ("one call", or pieces,
    /// bands, channel chunks).
    pub split: String,
    /// The plan's launches, one line each.
    pub launches: Vec<String>,
}

/// One layer's window along one spatial axis, as the receptive field sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Window {
    k: u32,
    d: u32,
    s: u32,
    /// The leading pad (top, left or front).
    p: u32,
    transposed: bool,
}

impl Window {
    fn forward(k: u32, d: u32, s: u32, p: u32) -> Self {
        Window { k, d, s, p, transposed: false }
    }

    /// The layer inputs (sorted, each once) that the outputs `outs` read: none where a
    /// transposed conv's taps miss every input of them.
    fn back(&self, outs: &[i64]) -> Vec<i64> {
        let [k, d, s, p] = [self.k, self.d, self.s.max(1), self.p].map(i64::from);
        let mut ins: Vec<i64> = Vec::with_capacity(outs.len() * k as usize);
        for &o in outs {
            for t in 0..k {
                let tap = t.saturating_mul(d);
                if self.transposed {
                    // output o = i·s − p + t·d
                    let a = o.saturating_add(p).saturating_sub(tap);
                    if a.rem_euclid(s) == 0 {
                        ins.push(a.div_euclid(s));
                    }
                } else {
                    ins.push(o.saturating_mul(s).saturating_sub(p).saturating_add(tap));
                }
            }
        }
        ins.sort_unstable();
        ins.dedup();
        ins
    }
}

/// The layers from a stack's input to a layer's output, per spatial axis: their receptive
/// field and jump (see the module's formulas). [`Field::default`] is a stack's start (no
/// layer: one pixel, jump 1).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Field {
    /// `axes[a]`: axis a's windows, first layer first.
    axes: Vec<Vec<Window>>,
}

impl Field {
    /// After one more layer, a window per spatial axis. Errors: a layer of another number of
    /// spatial axes than the stack's ([`Error::InvalidParam`]).
    fn then(&self, windows: &[Window]) -> Result<Field> {
        if !self.axes.is_empty() && self.axes.len() != windows.len() {
            return Err(Error::param(
                "layers",
                format!("a layer of {} spatial axes after layers of {}", windows.len(), self.axes.len()),
            ));
        }
        let mut axes = self.axes.clone();
        axes.resize(windows.len(), Vec::new());
        for (axis, w) in axes.iter_mut().zip(windows) {
            axis.push(*w);
        }
        Ok(Field { axes })
    }

    /// Stack-input pixels one output pixel depends on, per spatial axis (1 each before any
    /// layer; 0 where no input reaches an output, as a transposed conv whose dilation skips
    /// every input of some outputs).
    pub fn receptive_field(&self) -> Vec<u64> {
        self.axes
            .iter()
            .map(|windows| {
                // the exact inputs each output reads (not an interval: a transposed conv leaves
                // outputs that no input reaches, and a later dilated tap may land on them);
                // the pattern repeats with the product of the transposed strides (moving the
                // output by it moves every layer's positions by whole steps)
                let period = windows
                    .iter()
                    .filter(|w| w.transposed)
                    .fold(1u64, |p, w| p.saturating_mul(w.s.max(1) as u64))
                    .min(4096) as i64;
                (0..period)
                    .map(|o| {
                        let reach = windows.iter().rev().fold(vec![o], |outs, w| w.back(&outs));
                        reach.last().map_or(0, |hi| (hi - reach[0] + 1) as u64)
                    })
                    .max()
                    .unwrap_or(1)
            })
            .collect()
    }

    /// Stack-input pixels between neighbouring outputs, per spatial axis: the strides'
    /// product over the transposed convs' (0.5 after one stride-2 transposed conv).
    pub fn jump(&self) -> Vec<f64> {
        self.axes
            .iter()
            .map(|windows| windows.iter().fold(1.0, |j, w| if w.transposed { j / w.s as f64 } else { j * w.s as f64 }))
            .collect()
    }
}

/// A conv2d's windows (rows, columns).
fn conv_windows(g: &crate::params::Conv2dGeometry) -> [Window; 2] {
    [
        Window::forward(g.kh, g.dilation[0], g.stride[0], g.pads.top),
        Window::forward(g.kw, g.dilation[1], g.stride[1], g.pads.left),
    ]
}

fn split_of(pieces: u32, bands: u32, chunks: u32) -> String {
    let mut parts = Vec::new();
    if pieces > 1 {
        parts.push(format!("{pieces} batch pieces"));
    }
    if bands > 1 {
        parts.push(format!("each image in {bands} row bands"));
    }
    if chunks > 1 {
        parts.push(format!("{chunks} output-channel chunks"));
    }
    if parts.is_empty() {
        "one call".into()
    } else {
        parts.join(", ")
    }
}

fn bytes(shape: &[usize], dtype: DType) -> u64 {
    shape.iter().product::<usize>() as u64 * dtype.size()
}

/// What every forward conv's facts are made of: the weight's and bias's elements are the
/// parameters, half the FLOPs the MACs, and the bytes those of the input (and
/// `extra_input_bytes`: a deform_conv2d's offset and mask), the weight and bias, the output.
struct Forward<'a> {
    layer: String,
    input: &'a [usize],
    weight: &'a [usize],
    /// The bias's length (Cout) when there is one.
    bias: Option<usize>,
    output: Vec<usize>,
    flops: f64,
    extra_input_bytes: u64,
    field: Field,
    dtype: DType,
}

impl Forward<'_> {
    fn facts(self, workspace_bytes: u64, algorithm: &str, reason: &str, split: String, steps: &[Step]) -> LayerFacts {
        let macs = (self.flops / 2.0) as u64;
        let bias = self.bias.unwrap_or(0);
        LayerFacts {
            layer: self.layer,
            input_shape: self.input.to_vec(),
            parameters: (self.weight.iter().product::<usize>() + bias) as u64,
            macs,
            flops: 2 * macs,
            receptive_field: self.field.receptive_field(),
            jump: self.field.jump(),
            field: self.field,
            input_bytes: bytes(self.input, self.dtype) + self.extra_input_bytes,
            weight_bytes: bytes(self.weight, self.dtype) + bias as u64 * self.dtype.size(),
            output_bytes: bytes(&self.output, self.dtype),
            output_shape: self.output,
            workspace_bytes,
            algorithm: algorithm.to_string(),
            reason: reason.to_string(),
            split,
            launches: steps.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// conv2d of `input` `[N, Cin, H, W]` by `weight` `[Cout, Cin/groups, kh, kw]` (with a bias
/// when `bias`), after the stack `prev` ([`Field::default`] for a first layer). Errors as [`crate::plan_conv2d`].
pub fn conv2d(
    ctx: &GpuContext,
    input: &[usize],
    weight: &[usize],
    bias: bool,
    dtype: DType,
    params: &Conv2dParams,
    prev: &Field,
) -> Result<LayerFacts> {
    let b = [weight.first().copied().unwrap_or(0)];
    let plan = crate::plan_conv2d(ctx, input, weight, bias.then_some(&b[..]), dtype, params)?;
    let g = &plan.geometry;
    let forward = Forward {
        layer: conv_text("conv2d", g, &params.padding, if bias { " +bias" } else { "" }),
        input,
        weight,
        bias: bias.then_some(b[0]),
        output: g.output_shape().to_vec(),
        flops: g.flops(),
        extra_input_bytes: 0,
        field: prev.then(&conv_windows(g))?,
        dtype,
    };
    let split = split_of(plan.batch_pieces, plan.row_bands, plan.channel_chunks);
    Ok(forward.facts(plan.workspace_bytes, plan.algorithm.name(), &plan.reason, split, &plan.steps))
}

/// The backward pass (every gradient: input, weight, and bias when `bias`) of the conv2d of
/// `input` `[N, Cin, H, W]` by `weight` `[Cout, Cin/groups, kh, kw]` (PyTorch's autograd of
/// `F.conv2d`), after `prev` (see [`conv2d`]): the output shape is grad_output's (the
/// forward's output); MACs those of grad_input and grad_weight (each the forward's);
/// memory: input and grad_output in, the weight, the gradients out, and the workspace of
/// grad_input's conv_transpose2d (col2im's columns or Winograd's transforms; the per-part
/// slots of a split call's weight and bias sums are not counted). Errors as [`crate::ops::conv2d_backward::plan_conv2d_backward`].
pub fn conv2d_backward(
    ctx: &GpuContext,
    input: &[usize],
    weight: &[usize],
    bias: bool,
    dtype: DType,
    params: &Conv2dParams,
    prev: &Field,
) -> Result<LayerFacts> {
    use crate::ops::conv2d_backward::{plan_conv2d_backward, Grads};
    let which = Grads { input: true, weight: true, bias };
    let plan = plan_conv2d_backward(ctx, input, weight, params, dtype, which)?;
    let g = &plan.geometry;
    let output = g.output_shape().to_vec();
    let forward_macs = (g.flops() / 2.0) as u64;
    let field = prev.then(&conv_windows(g))?;
    let c_out = g.c_out as usize;
    let w_elems: usize = weight.iter().product();
    let bias_bytes = if bias { c_out as u64 * dtype.size() } else { 0 };
    let (algorithm, reason) = match (plan.depthwise_input, plan.depthwise_weight) {
        (true, true) => ("depthwise_bwd", "one input channel per group: the depthwise kernels"),
        (false, false) => ("gemm_bwd", "grad_input as conv_transpose2d, grad_weight as a gathering GEMM"),
        (true, false) => ("depthwise_bwd", "grad_input by the depthwise kernel, grad_weight by the GEMM (loop budget)"),
        (false, true) => ("depthwise_bwd", "grad_weight by the depthwise kernel, grad_input by the GEMM (loop budget)"),
    };
    Ok(LayerFacts {
        layer: conv_text("conv2d_backward", g, &params.padding, if bias { " +grad_bias" } else { "" }),
        input_shape: input.to_vec(),
        output_shape: output.clone(),
        parameters: (w_elems + if bias { c_out } else { 0 }) as u64,
        macs: 2 * forward_macs,
        flops: 4 * forward_macs,
        receptive_field: field.receptive_field(),
        jump: field.jump(),
        field,
        input_bytes: bytes(input, dtype) + bytes(&output, dtype),
        weight_bytes: bytes(weight, dtype),
        output_bytes: bytes(input, dtype) + bytes(weight, dtype) + bias_bytes,
        workspace_bytes: plan.workspace_bytes,
        algorithm: algorithm.into(),
        reason: reason.into(),
        split: split_of(plan.batch_pieces, plan.row_bands, plan.channel_chunks),
        launches: plan.steps.iter().map(|s| s.to_string()).collect(),
    })
}

/// max_pool2d or avg_pool2d of `input` `[N, C, H, W]`, after `prev` (see [`conv2d`]).
pub fn pool2d(
    ctx: &GpuContext,
    input: &[usize],
    dtype: DType,
    params: &Pool2dParams,
    mode: PoolMode,
    prev: &Field,
) -> Result<LayerFacts> {
    let plan = crate::ops::pool2d::plan_pool2d(ctx, input, dtype, params, mode)?;
    let output = plan.output.to_vec();
    let window = params.kernel[0] as u64 * params.kernel[1] as u64;
    let macs = output.iter().product::<usize>() as u64 * window;
    let stride = params.stride();
    let field = prev.then(
        &[0, 1].map(|a| Window::forward(params.kernel[a], params.dilation[a].max(1), stride[a], params.padding[a])),
    )?;
    let name = if mode == PoolMode::Max { "max_pool2d" } else { "avg_pool2d" };
    Ok(LayerFacts {
        layer: format!("{name} k {:?} stride {:?} padding {:?}", params.kernel, stride, params.padding),
        input_shape: input.to_vec(),
        output_shape: output.clone(),
        parameters: 0,
        macs,
        flops: macs,
        receptive_field: field.receptive_field(),
        jump: field.jump(),
        field,
        input_bytes: bytes(input, dtype),
        weight_bytes: 0,
        output_bytes: bytes(&output, dtype),
        workspace_bytes: 0,
        algorithm: "pool2d".into(),
        reason: "one kernel for both poolings".into(),
        split: split_of(plan.batch_pieces, plan.row_bands, 1),
        launches: plan.steps.iter().map(|s| s.to_string()).collect(),
    })
}

/// conv_transpose2d of `input` `[N, Cin, H, W]` by `weight` `[Cin, Cout/groups, kh, kw]`
/// (PyTorch's `F.conv_transpose2d`; a bias `[Cout]` when `bias`), after `prev` (see
/// [`conv2d`]): MACs N·Cin·H·W·(Cout/groups)·kh·kw (every input pixel times every tap), the
/// receptive field of an upsampling (an output pixel reads ⌈d·(k−1)+1 over s⌉ inputs at
/// most) and a fractional jump. Errors as
/// [`crate::ops::conv_transpose2d::plan_conv_transpose2d`].
pub fn conv_transpose2d(
    ctx: &GpuContext,
    input: &[usize],
    weight: &[usize],
    bias: bool,
    dtype: DType,
    params: &ConvTranspose2dParams,
    prev: &Field,
) -> Result<LayerFacts> {
    use crate::ops::conv_transpose2d::plan_conv_transpose2d;
    let c_out = weight.get(1).copied().unwrap_or(0) * params.groups.max(1) as usize;
    let b = [c_out];
    let plan = plan_conv_transpose2d(ctx, input, weight, bias.then_some(&b[..]), dtype, params)?;
    let g = &plan.geometry;
    let window = |a: usize, k: u32, p: u32| Window { k, d: g.dilation[a], s: g.stride[a], p, transposed: true };
    let forward = Forward {
        layer: format!(
            "conv_transpose2d {}→{} k {}×{} stride {:?} padding {} output_padding {:?} dilation {:?} groups {}{}",
            g.c_in,
            g.c_out,
            g.kh,
            g.kw,
            g.stride,
            padding_text(&params.padding),
            g.output_padding,
            g.dilation,
            g.groups,
            if bias { " +bias" } else { "" }
        ),
        input,
        weight,
        bias: bias.then_some(c_out),
        output: g.output_shape().to_vec(),
        flops: g.flops(),
        extra_input_bytes: 0,
        field: prev.then(&[window(0, g.kh, g.pads.top), window(1, g.kw, g.pads.left)])?,
        dtype,
    };
    let split = split_of(plan.batch_pieces, plan.row_bands, plan.channel_chunks);
    Ok(forward.facts(plan.workspace_bytes, plan.algorithm.name(), &plan.reason, split, &plan.steps))
}

/// deform_conv2d (torchvision's `ops.deform_conv2d`) of `input` `[N, Cin, H, W]` by `weight`
/// `[Cout, Cin/groups, kh, kw]` with `offset_groups` groups of offsets (`[N,
/// 2·offset_groups·kh·kw, Ho, Wo]`), a mask (`[N, offset_groups·kh·kw, Ho, Wo]`, v2) when
/// `mask` and a bias when `bias`, after `prev` (see [`conv2d`]). MACs are the conv's (the
/// bilinear sampling's four reads and weights per tap are not counted); the receptive field
/// is the conv's without offsets (offsets move each tap anywhere); input bytes count the
/// offset and mask. Errors as [`crate::ops::deform_conv2d::plan_deform_conv2d`], and
/// [`Error::InvalidParam`] for 0 offset groups.
#[allow(clippy::too_many_arguments)]
pub fn deform_conv2d(
    ctx: &GpuContext,
    input: &[usize],
    weight: &[usize],
    offset_groups: usize,
    mask: bool,
    bias: bool,
    dtype: DType,
    params: &Conv2dParams,
    prev: &Field,
) -> Result<LayerFacts> {
    if offset_groups == 0 {
        return Err(Error::param("offset_groups", "at least 1"));
    }
    let out = params.output_shape(input, weight)?;
    let taps = weight.get(2..4).map_or(0, |k| k[0] * k[1]);
    let (n, ho, wo) = (out[0], out[2], out[3]);
    let offset = [n, 2 * offset_groups * taps, ho, wo];
    let mask_shape = [n, offset_groups * taps, ho, wo];
    let b = [out[1]];
    let plan = crate::ops::deform_conv2d::plan_deform_conv2d(
        ctx,
        input,
        weight,
        &offset,
        mask.then_some(&mask_shape[..]),
        bias.then_some(&b[..]),
        dtype,
        params,
    )?;
    let g = &plan.geometry.conv;
    let reason = match (params.algorithm, plan.algorithm) {
        (Algorithm::Auto, Algorithm::Im2colGemm) => "the deformable im2col's dense GEMM runs the flat kernel here",
        (Algorithm::Auto, _) => "bilinear samples gathered by the GEMM's B loader (no workspace)",
        _ => "forced",
    };
    let extra = format!(
        " offset_groups {offset_groups}{}{}",
        if mask { " +mask" } else { "" },
        if bias { " +bias" } else { "" }
    );
    let forward = Forward {
        layer: conv_text("deform_conv2d", g, &params.padding, &extra),
        input,
        weight,
        bias: bias.then_some(b[0]),
        output: g.output_shape().to_vec(),
        flops: g.flops(),
        extra_input_bytes: bytes(&offset, dtype) + if mask { bytes(&mask_shape, dtype) } else { 0 },
        field: prev.then(&conv_windows(g))?,
        dtype,
    };
    let split = split_of(plan.batch_pieces, plan.row_bands, plan.channel_chunks);
    Ok(forward.facts(plan.workspace_bytes, plan.algorithm.name(), reason, split, &plan.steps))
}

/// conv1d (`F.conv1d`) of `input` `[N, Cin, L]` by `weight` `[Cout, Cin/groups, k]`, after
/// `prev` (a stack of conv1d layers; see [`conv2d`]): planned as the conv2d of `[N, Cin, 1,
/// L]` it runs as. Errors as [`crate::plan_conv2d`].
pub fn conv1d(
    ctx: &GpuContext,
    input: &[usize],
    weight: &[usize],
    bias: bool,
    dtype: DType,
    params: &Conv1dParams,
    prev: &Field,
) -> Result<LayerFacts> {
    let x = crate::params::as_batched(input, 3);
    params.validate(&x, weight, None)?;
    // both rank 3 now: [N, C, L] → [N, C, 1, L]
    let as_2d = |s: &[usize]| -> Result<Vec<usize>> { Ok(vec![s[0], s[1], 1, s[2]]) };
    let input_3d = x;
    let p2 = params.as_conv2d();
    let mut facts = conv2d(ctx, &as_2d(&input_3d)?, &as_2d(weight)?, bias, dtype, &p2, &Field::default())?;
    let g = crate::plan_conv2d(ctx, &as_2d(&input_3d)?, &as_2d(weight)?, None, dtype, &p2)?.geometry;
    let field = prev.then(&[conv_windows(&g)[1]])?;
    let out = facts.output_shape.clone();
    facts.layer = format!(
        "conv1d {}→{} k {} stride {} padding {:?} dilation {} groups {}{}",
        g.c_in,
        g.c_out,
        g.kw,
        params.stride,
        params.padding,
        params.dilation,
        params.groups,
        if bias { " +bias" } else { "" }
    );
    facts.input_shape = input.to_vec();
    facts.output_shape = vec![out[0], out[1], out[3]];
    facts.receptive_field = field.receptive_field();
    facts.jump = field.jump();
    facts.field = field;
    facts.reason += " (as conv2d on [N, C, 1, L])";
    Ok(facts)
}

/// conv3d (`F.conv3d`) of `input` `[N, Cin, D, H, W]` by `weight` `[Cout, Cin/groups, kd, kh,
/// kw]`, after `prev` (a stack of conv3d layers; see [`conv2d`]): vol2col and the dense GEMM
/// per chunk of output voxels (f16 storage runs on f32 copies). Errors as
/// [`crate::ops::conv3d::plan_conv3d`].
pub fn conv3d(
    ctx: &GpuContext,
    input: &[usize],
    weight: &[usize],
    bias: bool,
    dtype: DType,
    params: &Conv3dParams,
    prev: &Field,
) -> Result<LayerFacts> {
    let b = [weight.first().copied().unwrap_or(0)];
    let plan = crate::ops::conv3d::plan_conv3d(ctx, input, weight, bias.then_some(&b[..]), params)?;
    let g = &plan.geometry;
    let output = g.output_shape().to_vec();
    // each output element: Cin/groups·kd·kh·kw multiply-adds (the weight's elements per Cout)
    let per_output = weight.iter().product::<usize>() / b[0].max(1);
    let split = match (plan.batch_pieces, plan.depth_slabs, plan.channel_chunks) {
        (_, _, c) if c > 1 => format!("{c} output-channel chunks"),
        (_, s, _) if s > 1 => format!("each volume in {s} depth slabs"),
        (p, _, _) => split_of(p, 1, 1),
    };
    let forward = Forward {
        layer: format!(
            "conv3d {}→{} k {:?} stride {:?} padding {:?} dilation {:?} groups {}{}",
            g.c_in,
            g.c_out,
            g.kernel,
            g.stride,
            params.padding,
            g.dilation,
            g.groups,
            if bias { " +bias" } else { "" }
        ),
        input,
        weight,
        bias: bias.then_some(b[0]),
        flops: 2.0 * output.iter().product::<usize>() as f64 * per_output as f64,
        output,
        extra_input_bytes: 0,
        field: prev
            .then(&[0, 1, 2].map(|a| Window::forward(g.kernel[a], g.dilation[a], g.stride[a], g.pad_begin[a])))?,
        dtype,
    };
    let reason = if dtype == DType::F16 {
        "the one conv3d algorithm (on f32 copies of f16 tensors)"
    } else {
        "the one conv3d algorithm"
    };
    Ok(forward.facts(plan.workspace_bytes, "vol2col_gemm", reason, split, &plan.steps))
}

/// `name Cin→Cout k kh×kw stride .. padding .. dilation .. groups G` and `extra`.
fn conv_text(name: &str, g: &crate::params::Conv2dGeometry, padding: &Padding, extra: &str) -> String {
    format!(
        "{name} {}→{} k {}×{} stride {:?} padding {} dilation {:?} groups {}{extra}",
        g.c_in,
        g.c_out,
        g.kh,
        g.kw,
        g.stride,
        padding_text(padding),
        g.dilation,
        g.groups
    )
}

fn padding_text(p: &Padding) -> String {
    match p {
        Padding::Valid => "valid".into(),
        Padding::Same => "same".into(),
        Padding::Symmetric([h, w]) => format!("[{h}, {w}]"),
        Padding::Explicit { top, left, bottom, right } => format!("t{top} l{left} b{bottom} r{right}"),
    }
}

/// A stack of layers, one per line of `text`, run from `input` `[N, C, H, W]`:
///
/// ```text
/// # comments and blank lines are skipped
/// conv2d 64 k=7 s=2 p=3 bias      # out_channels, then kernel, stride, padding, dilation, groups
/// max_pool2d k=3 s=2 p=1
/// conv2d 64 k=3 p=1 g=64           # depthwise
/// avg_pool2d k=2
/// conv_transpose2d 32 k=4 s=2 p=1  # upsampling; op= its output_padding
/// ```
///
/// `k`, `s`, `p`, `d`, `op` take one value or `H,W`; `p=same` and `p=valid` for conv2d. Each
/// layer's input is the previous layer's output. Errors: a line that does not parse
/// ([`Error::InvalidParam`], naming the line), or the first layer PyTorch would reject.
pub fn stack(ctx: &GpuContext, input: &[usize], dtype: DType, text: &str) -> Result<Vec<LayerFacts>> {
    let mut shape = input.to_vec();
    let mut prev = Field::default();
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let bad = |why: String| Error::param("layers", format!("line {}: `{line}`: {why}", i + 1));
        let mut words = line.split_whitespace();
        let op = words.next().unwrap_or_default();
        let mut keys = std::collections::HashMap::new();
        let mut out_channels = None;
        let mut bias = false;
        for w in words {
            match w.split_once('=') {
                Some((k, v)) => {
                    keys.insert(k.to_string(), v.to_string());
                }
                None if w == "bias" => bias = true,
                None => {
                    out_channels = Some(w.parse::<usize>().map_err(|_| bad(format!("`{w}`: not a channel count")))?)
                }
            }
        }
        let pair = |k: &str, default: u32| -> Result<[u32; 2]> {
            match keys.get(k) {
                None => Ok([default; 2]),
                Some(v) => {
                    let vals: Vec<u32> = v
                        .split(',')
                        .map(|x| x.parse().map_err(|_| bad(format!("{k}={v}: not a whole number or H,W"))))
                        .collect::<Result<_>>()?;
                    match vals[..] {
                        [a] => Ok([a, a]),
                        [a, b] => Ok([a, b]),
                        _ => Err(bad(format!("{k}={v}: one value or two"))),
                    }
                }
            }
        };
        let facts = match op {
            "conv2d" => {
                let c_out = out_channels.ok_or_else(|| bad("conv2d needs its output channel count".into()))?;
                let k = pair("k", 0)?;
                if k[0] == 0 {
                    return Err(bad("conv2d needs k=".into()));
                }
                let groups = keys.get("g").map_or(Ok(1), |g| g.parse().map_err(|_| bad(format!("g={g}"))))?;
                let padding = match keys.get("p").map(String::as_str) {
                    Some("same") => Padding::Same,
                    Some("valid") => Padding::Valid,
                    _ => Padding::Symmetric(pair("p", 0)?),
                };
                let params = Conv2dParams {
                    stride: pair("s", 1)?,
                    padding,
                    dilation: pair("d", 1)?,
                    groups,
                    ..Default::default()
                };
                let c_in = *shape.get(1).ok_or_else(|| bad("the input is not [N, C, H, W]".into()))?;
                let cig = c_in / (groups.max(1) as usize);
                let weight = [c_out, cig, k[0] as usize, k[1] as usize];
                conv2d(ctx, &shape, &weight, bias, dtype, &params, &prev)?
            }
            "conv_transpose2d" => {
                let c_out =
                    out_channels.ok_or_else(|| bad("conv_transpose2d needs its output channel count".into()))?;
                let k = pair("k", 0)?;
                if k[0] == 0 {
                    return Err(bad("conv_transpose2d needs k=".into()));
                }
                let groups: u32 = keys.get("g").map_or(Ok(1), |g| g.parse().map_err(|_| bad(format!("g={g}"))))?;
                if groups == 0 || c_out % groups as usize != 0 {
                    return Err(bad(format!("{c_out} output channels do not split into {groups} groups")));
                }
                let params = ConvTranspose2dParams {
                    stride: pair("s", 1)?,
                    padding: Padding::Symmetric(pair("p", 0)?),
                    output_padding: pair("op", 0)?,
                    dilation: pair("d", 1)?,
                    groups,
                    ..Default::default()
                };
                let c_in = *shape.get(1).ok_or_else(|| bad("the input is not [N, C, H, W]".into()))?;
                let weight = [c_in, c_out / (groups.max(1) as usize), k[0] as usize, k[1] as usize];
                conv_transpose2d(ctx, &shape, &weight, bias, dtype, &params, &prev)?
            }
            "max_pool2d" | "avg_pool2d" => {
                let k = pair("k", 0)?;
                if k[0] == 0 {
                    return Err(bad(format!("{op} needs k=")));
                }
                let params = Pool2dParams {
                    kernel: k,
                    stride: keys.contains_key("s").then(|| pair("s", 1)).transpose()?,
                    padding: pair("p", 0)?,
                    count_include_pad: true,
                    ..Default::default()
                };
                let mode = if op == "max_pool2d" { PoolMode::Max } else { PoolMode::Avg };
                pool2d(ctx, &shape, dtype, &params, mode, &prev)?
            }
            other => return Err(bad(format!("`{other}`: conv2d, conv_transpose2d, max_pool2d or avg_pool2d"))),
        };
        shape = facts.output_shape.clone();
        prev = facts.field.clone();
        out.push(facts);
    }
    Ok(out)
}

impl std::fmt::Display for LayerFacts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mib = |b: u64| b as f64 / (1 << 20) as f64;
        writeln!(f, "{}", self.layer)?;
        writeln!(f, "  input {:?} → output {:?}", self.input_shape, self.output_shape)?;
        writeln!(f, "  parameters {}   MACs {}   FLOPs {}", self.parameters, self.macs, self.flops)?;
        writeln!(f, "  receptive field {}   jump {}", axes(&self.receptive_field), jumps(&self.jump))?;
        writeln!(
            f,
            "  memory: input {:.2} MiB, weight {:.2} MiB, output {:.2} MiB, workspace {:.2} MiB",
            mib(self.input_bytes),
            mib(self.weight_bytes),
            mib(self.output_bytes),
            mib(self.workspace_bytes)
        )?;
        writeln!(f, "  algorithm {} ({}); {}", self.algorithm, self.reason, self.split)?;
        writeln!(f, "  {} launch(es):", self.launches.len())?;
        for l in &self.launches {
            writeln!(f, "    {l}")?;
        }
        Ok(())
    }
}

/// `7×7`: a value per spatial axis.
pub fn axes(v: &[u64]) -> String {
    v.iter().map(u64::to_string).collect::<Vec<_>>().join("×")
}

/// `2×2`, `1/2×1/2`: a jump per spatial axis, as a whole number or a unit fraction where it
/// is one.
pub fn jumps(v: &[f64]) -> String {
    let one = |j: f64| {
        if j >= 1.0 && j.fract() == 0.0 {
            format!("{j}")
        } else if j > 0.0 && (1.0 / j - (1.0 / j).round()).abs() < 1e-9 {
            format!("1/{}", (1.0 / j).round())
        } else {
            format!("{j:.4}")
        }
    };
    v.iter().map(|&j| one(j)).collect::<Vec<_>>().join("×")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::{ConvTranspose1dParams, Padding1d};
    use crate::tensor::HostTensor;

    /// Runs `windows` as conv1d / conv_transpose1d layers of all-ones kernels (one channel) on
    /// each unit impulse of a line of `len`, with the f64 references, and returns, for output
    /// positions away from the ends, the widest span of inputs whose impulse reaches them.
    fn reached_span(windows: &[Window], len: usize) -> u64 {
        let mut reach: Vec<Vec<usize>> = Vec::new();
        for i in 0..len {
            let mut x = vec![0f32; len];
            x[i] = 1.0;
            let mut line = HostTensor::new(&[1, 1, len], x).unwrap();
            for w in windows {
                let weight = HostTensor::new(&[1, 1, w.k as usize], vec![1.0; w.k as usize]).unwrap();
                let (shape, y) = if w.transposed {
                    let p = ConvTranspose1dParams {
                        stride: w.s,
                        padding: Padding1d::Symmetric(w.p),
                        dilation: w.d,
                        ..Default::default()
                    };
                    let (s, y) =
                        crate::reference::conv_transpose1d::conv_transpose1d(&line, &weight, None, &p).unwrap();
                    (s.to_vec(), y)
                } else {
                    let p = Conv1dParams {
                        stride: w.s,
                        padding: Padding1d::Symmetric(w.p),
                        dilation: w.d,
                        ..Default::default()
                    };
                    let (s, y) = crate::reference::conv1d::conv1d(&line, &weight, None, &p).unwrap();
                    (s.to_vec(), y)
                };
                line = HostTensor::new(&shape, y.iter().map(|&v| v as f32).collect()).unwrap();
            }
            reach.resize(line.data.len(), Vec::new());
            for (o, v) in line.data.iter().enumerate() {
                if *v != 0.0 {
                    reach[o].push(i);
                }
            }
        }
        let (a, b) = (reach.len() / 4, reach.len() * 3 / 4);
        reach[a..b].iter().map(|r| r.last().map_or(0, |hi| (hi - r[0] + 1) as u64)).max().unwrap()
    }

    /// The receptive field found by carrying intervals back through the layers is the
    /// widest span of inputs that reach one output through the reference convs, for forward
    /// stacks, dilations, and stacks with transposed convs (whose outputs' reach differs from
    /// phase to phase); the jump counts a transposed conv's stride as a division.
    #[test]
    fn receptive_fields_match_what_reaches_an_output_through_the_references() {
        let f = |k, d, s, p| Window::forward(k, d, s, p);
        let t = |k, d, s, p| Window { k, d, s, p, transposed: true };
        let stacks: [&[Window]; 9] = [
            &[f(7, 1, 2, 3), f(3, 1, 2, 1), f(3, 1, 1, 1)],
            &[f(3, 2, 1, 2), f(3, 4, 2, 4)],
            &[t(4, 1, 2, 1)],
            &[t(3, 1, 2, 1)],
            &[f(3, 1, 2, 1), t(4, 1, 2, 1), f(3, 1, 1, 1), t(3, 1, 2, 1)],
            &[t(3, 2, 3, 0), f(2, 1, 1, 0)],
            &[t(5, 1, 2, 2), t(5, 1, 2, 2), f(3, 1, 2, 1)],
            // outputs of the transposed conv that no input reaches, then a dilated tap that
            // lands on one: an interval of positions would count inputs that never arrive
            &[t(1, 1, 2, 0), f(2, 3, 1, 0)],
            &[t(2, 3, 2, 0), f(2, 2, 1, 0)],
        ];
        for windows in stacks {
            let field = windows.iter().try_fold(Field::default(), |fl, w| fl.then(&[*w])).unwrap();
            assert_eq!(field.receptive_field(), vec![reached_span(windows, 48)], "{windows:?}");
        }
        let up = Field::default().then(&[t(4, 1, 2, 1); 2]).unwrap();
        assert_eq!((up.receptive_field(), up.jump()), (vec![2, 2], vec![0.5, 0.5]));
        assert_eq!(jumps(&up.jump()), "1/2×1/2");
        assert!(up.then(&[f(3, 1, 1, 1)]).is_err(), "a 1-D layer after 2-D ones");
    }
}

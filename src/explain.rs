//! `wgconv explain`: the arithmetic people get wrong most, for one layer or a stack: output
//! shape, parameters, MACs and FLOPs, the receptive field and its jump, the bytes of every
//! tensor and workspace, how a call splits over storage bindings, the algorithm `Auto`
//! picks on this adapter and why, and the launches its plan records ([`crate::plan_conv2d`],
//! [`crate::ops::conv2d_backward::plan_conv2d_backward`], [`crate::ops::pool2d::plan_pool2d`]).
//!
//! Receptive field of a stack, per axis (input pixels one output pixel sees): `rf = rf_prev +
//! (d·(k−1)) · jump_prev` and `jump = jump_prev · stride`, starting from `rf = 1, jump = 1`.

use crate::context::GpuContext;
use crate::error::{Error, Result};
use crate::ops::pool2d::PoolMode;
use crate::params::{Conv2dParams, Padding, Pool2dParams};
use crate::tensor::DType;

/// One layer's numbers (the receptive field and jump are cumulative over the stack so far).
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "cli", derive(serde::Serialize))]
pub struct LayerFacts {
    /// `conv2d`, `max_pool2d`, `avg_pool2d`, with its arguments.
    pub layer: String,
    /// `[N, C, H, W]` in.
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
    /// Input pixels one output pixel depends on, `[rows, columns]`, through the stack.
    pub receptive_field: [u64; 2],
    /// Input pixels between neighbouring outputs (the product of the strides so far).
    pub jump: [u64; 2],
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

/// The receptive field and jump before a stack's first layer.
pub const START: ([u64; 2], [u64; 2]) = ([1, 1], [1, 1]);

fn grow(prev: ([u64; 2], [u64; 2]), k: [u32; 2], stride: [u32; 2], dilation: [u32; 2]) -> ([u64; 2], [u64; 2]) {
    let (rf, jump) = prev;
    let axis = |a: usize| {
        let span = dilation[a] as u64 * (k[a] as u64 - 1);
        (rf[a] + span * jump[a], jump[a] * stride[a] as u64)
    };
    let (r0, j0) = axis(0);
    let (r1, j1) = axis(1);
    ([r0, r1], [j0, j1])
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

/// conv2d of `input` `[N, Cin, H, W]` by `weight` `[Cout, Cin/groups, kh, kw]` (with a bias
/// when `bias`), after a stack whose receptive field and jump are `prev` ([`START`] for a
/// first layer). Errors as [`crate::plan_conv2d`].
pub fn conv2d(
    ctx: &GpuContext,
    input: &[usize],
    weight: &[usize],
    bias: bool,
    dtype: DType,
    params: &Conv2dParams,
    prev: ([u64; 2], [u64; 2]),
) -> Result<LayerFacts> {
    let b = [weight.first().copied().unwrap_or(0)];
    let plan = crate::plan_conv2d(ctx, input, weight, bias.then_some(&b[..]), dtype, params)?;
    let g = &plan.geometry;
    let output = plan.geometry.output_shape().to_vec();
    let macs = (g.flops() / 2.0) as u64;
    let (receptive_field, jump) = grow(prev, [g.kh, g.kw], g.stride, g.dilation);
    let w_elems: usize = weight.iter().product();
    Ok(LayerFacts {
        layer: conv_text("conv2d", g, &params.padding, if bias { " +bias" } else { "" }),
        input_shape: input.to_vec(),
        output_shape: output.clone(),
        parameters: (w_elems + if bias { b[0] } else { 0 }) as u64,
        macs,
        flops: 2 * macs,
        receptive_field,
        jump,
        input_bytes: bytes(input, dtype),
        weight_bytes: bytes(weight, dtype) + if bias { b[0] as u64 * dtype.size() } else { 0 },
        output_bytes: bytes(&output, dtype),
        workspace_bytes: plan.workspace_bytes,
        algorithm: plan.algorithm.name().to_string(),
        reason: plan.reason.clone(),
        split: split_of(plan.batch_pieces, plan.row_bands, plan.channel_chunks),
        launches: plan.steps.iter().map(|s| s.to_string()).collect(),
    })
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
    prev: ([u64; 2], [u64; 2]),
) -> Result<LayerFacts> {
    use crate::ops::conv2d_backward::{plan_conv2d_backward, Grads};
    let which = Grads { input: true, weight: true, bias };
    let plan = plan_conv2d_backward(ctx, input, weight, params, dtype, which)?;
    let g = &plan.geometry;
    let output = g.output_shape().to_vec();
    let forward_macs = (g.flops() / 2.0) as u64;
    let (receptive_field, jump) = grow(prev, [g.kh, g.kw], g.stride, g.dilation);
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
        receptive_field,
        jump,
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
    prev: ([u64; 2], [u64; 2]),
) -> Result<LayerFacts> {
    let plan = crate::ops::pool2d::plan_pool2d(ctx, input, dtype, params, mode)?;
    let output = plan.output.to_vec();
    let window = params.kernel[0] as u64 * params.kernel[1] as u64;
    let macs = output.iter().product::<usize>() as u64 * window;
    let stride = params.stride();
    let (receptive_field, jump) = grow(prev, params.kernel, stride, [1, 1]);
    let name = if mode == PoolMode::Max { "max_pool2d" } else { "avg_pool2d" };
    Ok(LayerFacts {
        layer: format!("{name} k {:?} stride {:?} padding {:?}", params.kernel, stride, params.padding),
        input_shape: input.to_vec(),
        output_shape: output.clone(),
        parameters: 0,
        macs,
        flops: macs,
        receptive_field,
        jump,
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
/// ```
///
/// `k`, `s`, `p`, `d` take one value or `H,W`; `p=same` and `p=valid` for conv2d. Each
/// layer's input is the previous layer's output. Errors: a line that does not parse
/// ([`Error::InvalidParam`], naming the line), or the first layer PyTorch would reject.
pub fn stack(ctx: &GpuContext, input: &[usize], dtype: DType, text: &str) -> Result<Vec<LayerFacts>> {
    let mut shape = input.to_vec();
    let mut prev = START;
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
                conv2d(ctx, &shape, &weight, bias, dtype, &params, prev)?
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
                pool2d(ctx, &shape, dtype, &params, mode, prev)?
            }
            other => return Err(bad(format!("`{other}`: conv2d, max_pool2d or avg_pool2d"))),
        };
        shape = facts.output_shape.clone();
        prev = (facts.receptive_field, facts.jump);
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
        writeln!(
            f,
            "  receptive field {}×{}   jump {}×{}",
            self.receptive_field[0], self.receptive_field[1], self.jump[0], self.jump[1]
        )?;
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

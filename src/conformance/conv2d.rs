//! conv2d's conformance cases: the generator over its parameter space, the reference,
//! the call, the shrinker's simpler variants, and the runner with a swappable oracle.

use super::*;

/// A conv2d case: shapes, parameters and the seed of its data.
#[derive(Clone, Debug, PartialEq)]
pub struct Conv2dCase {
    /// Input shape `[N, Cin, H, W]`.
    pub input: [usize; 4],
    /// Weight shape `[Cout, Cin/groups, kh, kw]`.
    pub weight: [usize; 4],
    /// Whether the case has a bias (`[Cout]`).
    pub bias: bool,
    /// Stride, padding, dilation, groups, algorithm, activation and padding mode.
    pub params: Conv2dParams,
    /// Seed of the random input, weight and bias (see `data`).
    pub seed: u64,
}

impl Conv2dCase {
    /// Seeded data: values in [-1, 1).
    pub fn data(&self) -> (HostTensor, HostTensor, Option<HostTensor>) {
        let x = HostTensor::random(&self.input, self.seed);
        let w = HostTensor::random(&self.weight, self.seed ^ 0x5151_5151);
        let b = self.bias.then(|| HostTensor::random(&[self.weight[0]], self.seed ^ 0xb1a5));
        (x, w, b)
    }
}

impl std::fmt::Display for Conv2dCase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = &self.params;
        write!(
            f,
            "conv2d x{:?} w{:?} bias={} stride={:?} padding={:?} dilation={:?} groups={} padding_mode={} seed={}",
            self.input,
            self.weight,
            self.bias,
            p.stride,
            p.padding,
            p.dilation,
            p.groups,
            p.padding_mode.name(),
            self.seed
        )
    }
}

/// A random valid conv2d over the whole parameter space, small enough to check quickly:
/// groups 1, 2–4 or depthwise (channel multiplier 1–2), kernels 1–5 (non-square), strides and
/// dilations 1–3 (asymmetric), every padding kind, N 1–3, sizes that include 1 and primes.
pub fn random_conv2d_case(rng: &mut SplitMix64) -> Conv2dCase {
    let (groups, cig, cog) = match rng.range(0, 9) {
        0..=4 => (1, rng.range(1, 6), rng.range(1, 6)),
        5..=6 => (rng.range(2, 4), rng.range(1, 3), rng.range(1, 3)),
        _ => {
            let c = rng.range(1, 9);
            (c, 1, rng.range(1, 2))
        }
    };
    // One case in eight is pointwise (1x1, stride 1, unpadded): its own fast path.
    let pointwise = rng.range(0, 7) == 0;
    // One in eight of the others is 3x3, stride 1, dilation 1: Winograd's.
    let winograd = !pointwise && rng.range(0, 7) == 0;
    let k = match (pointwise, winograd) {
        (true, _) => [1, 1],
        (_, true) => [3, 3],
        _ => [rng.range(1, 5), rng.range(1, 5)],
    };
    let dilation = if winograd { [1, 1] } else { [rng.range(1, 3), rng.range(1, 3)] };
    let stride = if pointwise || winograd { [1, 1] } else { [rng.range(1, 3), rng.range(1, 3)] };
    let padding = match rng.range(0, 4) {
        _ if pointwise => Padding::Valid,
        0 => Padding::Valid,
        1 => Padding::Symmetric([rng.range(0, k[0]), rng.range(0, k[1])]),
        2 => Padding::Explicit {
            top: rng.range(0, 3),
            left: rng.range(0, 3),
            bottom: rng.range(0, 3),
            right: rng.range(0, 3),
        },
        _ => Padding::Same,
    };
    let stride = if padding == Padding::Same { [1, 1] } else { stride };
    let pads = padding.resolve(k, dilation);
    // Smallest input that gives an output of ≥ 1, then a few more.
    let min_len = |axis: usize, pb: u32, pe: u32| (dilation[axis] * (k[axis] - 1) + 1).saturating_sub(pb + pe).max(1);
    let h = min_len(0, pads.top, pads.bottom) + rng.range(0, 9);
    let w = min_len(1, pads.left, pads.right) + rng.range(0, 9);
    let params = Conv2dParams { stride, padding, dilation, groups, ..Default::default() };
    Conv2dCase {
        input: [rng.range(1, 3) as usize, (groups * cig) as usize, h as usize, w as usize],
        weight: [(groups * cog) as usize, cig as usize, k[0] as usize, k[1] as usize],
        bias: rng.range(0, 1) == 1,
        params,
        seed: rng.next_u64(),
    }
}

/// `count` cases from `seed`.
pub fn conv2d_cases(seed: u64, count: usize) -> Vec<Conv2dCase> {
    let mut rng = SplitMix64::new(seed);
    (0..count).map(|_| random_conv2d_case(&mut rng)).collect()
}

/// Computes the expected output of a case (the f64 reference, unless a test swaps it).
pub type Conv2dOracle = fn(&HostTensor, &HostTensor, Option<&HostTensor>, &Conv2dParams) -> Result<Vec<f64>>;

/// The default oracle: [`crate::reference::conv2d()`].
pub fn reference_conv2d(x: &HostTensor, w: &HostTensor, b: Option<&HostTensor>, p: &Conv2dParams) -> Result<Vec<f64>> {
    crate::reference::conv2d(x, w, b, p).map(|(_, v)| v)
}

impl OpCase for Conv2dCase {
    fn inputs(&self) -> Result<Vec<HostTensor>> {
        let (x, w, b) = self.data();
        Ok([x, w].into_iter().chain(b).collect())
    }
    fn expected(&self, i: &[HostTensor]) -> Result<Vec<Vec<f64>>> {
        Ok(vec![reference_conv2d(&i[0], &i[1], i.get(2), &self.params)?])
    }
    fn output_shapes(&self, s: &[&[usize]]) -> Result<Vec<Vec<usize>>> {
        let g = self.params.validate(&crate::ops::as_batched(s[0], 4), s[1], s.get(2).copied())?;
        Ok(vec![crate::ops::returned_shape(s[0], &g.output_shape())])
    }
    fn record(&self, ctx: &GpuContext, e: &mut wgpu::CommandEncoder, t: &[Tensor], o: &[Tensor]) -> Result<Ran> {
        let info = crate::ops::conv2d::conv2d_into(ctx, e, &t[0], &t[1], t.get(2), &self.params, &o[0])?;
        let label = match info.batch_pieces {
            0 | 1 => info.algorithm.name().to_string(),
            k => format!("{}, {k} batch pieces", info.algorithm.name()),
        };
        Ok(Ran { label, workspace_bytes: info.workspace_bytes })
    }
    fn flops(&self, s: &[&[usize]]) -> Result<f64> {
        Ok(self.params.validate(&crate::ops::as_batched(s[0], 4), s[1], None)?.flops())
    }
    fn expected_at(&self, i: &[HostTensor], at: usize) -> Option<Result<f64>> {
        let g = match self.params.validate(&crate::ops::as_batched(&i[0].shape, 4), &i[1].shape, None) {
            Ok(g) => g,
            Err(e) => return Some(Err(e)),
        };
        Some(Ok(self.params.activation.apply(crate::reference::conv2d_at(&i[0], &i[1], i.get(2), &g, at))))
    }
    fn applies(&self) -> bool {
        let bias = [self.weight[0]];
        let checked = self.params.validate(&self.input, &self.weight, self.bias.then_some(&bias[..]));
        !matches!(checked, Err(Error::InvalidParam { name: "algorithm", .. }))
    }
    fn simpler(&self) -> Vec<Self> {
        simpler(self)
    }
}

/// A conv2d case whose expected output comes from another oracle (a test's).
#[derive(Clone)]
#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
struct Oracled {
    case: Conv2dCase,
    oracle: Conv2dOracle,
}

impl std::fmt::Display for Oracled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.case.fmt(f)
    }
}

impl OpCase for Oracled {
    fn inputs(&self) -> Result<Vec<HostTensor>> {
        self.case.inputs()
    }
    fn expected(&self, i: &[HostTensor]) -> Result<Vec<Vec<f64>>> {
        Ok(vec![(self.oracle)(&i[0], &i[1], i.get(2), &self.case.params)?])
    }
    fn output_shapes(&self, s: &[&[usize]]) -> Result<Vec<Vec<usize>>> {
        self.case.output_shapes(s)
    }
    fn record(&self, ctx: &GpuContext, e: &mut wgpu::CommandEncoder, t: &[Tensor], o: &[Tensor]) -> Result<Ran> {
        self.case.record(ctx, e, t, o)
    }
    fn flops(&self, s: &[&[usize]]) -> Result<f64> {
        self.case.flops(s)
    }
    fn applies(&self) -> bool {
        self.case.applies()
    }
}

/// The cases of `cases` that pad, each with a padding mode other than zeros (reflect,
/// replicate, circular in turn) and `Auto`, where the mode's rules admit it (reflect: each
/// pad below its axis; circular: at most): what `conv2d/padding_mode` runs.
pub fn with_padding_modes(cases: &[Conv2dCase]) -> Vec<Conv2dCase> {
    use crate::params::PaddingMode;
    let modes = [PaddingMode::Reflect, PaddingMode::Replicate, PaddingMode::Circular];
    cases
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let params = Conv2dParams { padding_mode: modes[i % 3], algorithm: Algorithm::Auto, ..c.params };
            Conv2dCase { params, ..c.clone() }
        })
        .filter(|c| c.params.validate(&c.input, &c.weight, None).is_ok_and(|g| g.pads_by_mode()))
        .collect()
}

/// A case of conv2d or conv_transpose2d (`C`) whose input and output are stored in `layouts`
/// (channels-last: the loaders and write-outs index NHWC themselves). Its input tensor holds
/// the channels-last values under the logical shape (what the runner uploads); its expected
/// output is the NCHW case's reference in the output's layout's order.
#[derive(Clone, Debug)]
pub struct LayoutCase<C> {
    /// The case itself (its shapes logical, NCHW).
    pub case: C,
    /// The memory layout (NCHW or channels-last) of its input and of its output.
    pub layouts: crate::ops::conv2d::Conv2dLayouts,
    /// The input [`OpCase::expected_at`] last put back in NCHW order (it is called per
    /// point), keyed by the channels-last values it came from ([`fingerprint`]).
    nchw_input: std::sync::Arc<std::sync::Mutex<Option<Converted>>>,
}

impl<C: PartialEq> PartialEq for LayoutCase<C> {
    fn eq(&self, other: &Self) -> bool {
        self.case == other.case && self.layouts == other.layouts
    }
}

impl<C> LayoutCase<C> {
    /// `case` with its input and output stored in `layouts`.
    pub fn new(case: C, layouts: crate::ops::conv2d::Conv2dLayouts) -> Self {
        LayoutCase { case, layouts, nchw_input: Default::default() }
    }
}

impl<C: std::fmt::Display> std::fmt::Display for LayoutCase<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} input={} output={}", self.case, self.layouts.input.name(), self.layouts.output.name())
    }
}

/// A tensor's [`fingerprint`] and its values in NCHW order.
type Converted = (Vec<u64>, HostTensor);

/// What identifies a tensor's values for [`LayoutCase`]'s cache: its address, length, shape
/// and 16 of its values' bits spread over it (the spot checks pass one tensor again and
/// again; another tensor that matched all of these would have to reuse the address).
fn fingerprint(t: &HostTensor) -> Vec<u64> {
    let n = t.data.len();
    let mut key = vec![t.data.as_ptr() as u64, n as u64];
    key.extend(t.shape.iter().map(|&d| d as u64));
    key.extend((0..16).filter(|_| n > 0).map(|k| t.data[k * (n - 1) / 15].to_bits() as u64));
    key
}

/// Values of the NCHW `[N, C, H, W]` tensor `v` in channels-last order.
fn channels_last_f64(v: &[f64], shape: &[usize]) -> Vec<f64> {
    let (c, h, w) = (shape[1], shape[2], shape[3]);
    let mut out = vec![0.0; v.len()];
    for (i, x) in v.iter().enumerate() {
        let (px, y, ch, img) = (i % w, i / w % h, i / (w * h) % c, i / (w * h * c));
        out[((img * h + y) * w + px) * c + ch] = *x;
    }
    out
}

impl<C: OpCase> LayoutCase<C> {
    /// The inputs with the first put back in NCHW order; `cached`: keep (and reuse) it.
    fn nchw(&self, i: &[HostTensor], cached: bool) -> Result<Vec<HostTensor>> {
        let mut v = i.to_vec();
        if self.layouts.input != Layout::ChannelsLast {
            return Ok(v);
        }
        if !cached {
            v[0] = HostTensor::from_channels_last(&i[0].shape, &i[0].data)?;
            return Ok(v);
        }
        let key = fingerprint(&i[0]);
        let mut cache = self.nchw_input.lock().map_err(|_| Error::Internal("a poisoned lock".into()))?;
        match cache.as_ref() {
            Some((k, x)) if *k == key => v[0] = x.clone(),
            _ => {
                v[0] = HostTensor::from_channels_last(&i[0].shape, &i[0].data)?;
                *cache = Some((key, v[0].clone()));
            }
        }
        Ok(v)
    }

    /// The output's shape, `[N, C, H, W]`.
    fn output_shape(&self, i: &[HostTensor]) -> Result<[usize; 4]> {
        let shapes: Vec<&[usize]> = i.iter().map(|t| t.shape.as_slice()).collect();
        self.output_shapes(&shapes)?[0][..].try_into().map_err(|_| Error::Internal("output not of rank 4".into()))
    }
}

impl<C: OpCase> OpCase for LayoutCase<C> {
    fn inputs(&self) -> Result<Vec<HostTensor>> {
        let mut i = self.case.inputs()?;
        if self.layouts.input == Layout::ChannelsLast {
            i[0].data = i[0].to_channels_last()?;
        }
        Ok(i)
    }
    fn expected(&self, i: &[HostTensor]) -> Result<Vec<Vec<f64>>> {
        let mut y = self.case.expected(&self.nchw(i, false)?)?;
        if self.layouts.output == Layout::ChannelsLast {
            y[0] = channels_last_f64(&y[0], &self.output_shape(i)?);
        }
        Ok(y)
    }
    fn output_shapes(&self, s: &[&[usize]]) -> Result<Vec<Vec<usize>>> {
        self.case.output_shapes(s)
    }
    /// The output tensor carries the output's layout ([`Tensor::to_host`] then reads it in
    /// NCHW order; [`Tensor::to_vec`] in the layout's, as [`OpCase::expected`] gives it).
    fn run(&self, ctx: &GpuContext, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let shapes: Vec<&[usize]> = inputs.iter().map(Tensor::shape).collect();
        let dtype = inputs.first().map_or(DType::F32, Tensor::dtype);
        let mut outputs =
            self.output_shapes(&shapes)?.iter().map(|s| Tensor::empty_as(ctx, s, dtype)).collect::<Result<Vec<_>>>()?;
        outputs[0] = outputs[0].clone().with_layout(self.layouts.output)?;
        let mut encoder = ctx.device().create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("case") });
        self.record(ctx, &mut encoder, inputs, &outputs)?;
        ctx.submit(encoder)?;
        Ok(outputs)
    }
    fn record(&self, ctx: &GpuContext, e: &mut wgpu::CommandEncoder, t: &[Tensor], o: &[Tensor]) -> Result<Ran> {
        let x = t[0].clone().with_layout(self.layouts.input)?;
        let y = o[0].clone().with_layout(self.layouts.output)?;
        let ran = self.case.record(ctx, e, &[&[x], &t[1..]].concat(), &[y])?;
        let (i, o) = (self.layouts.input.name(), self.layouts.output.name());
        Ok(Ran { label: format!("{} ({i} → {o})", ran.label), ..ran })
    }
    fn flops(&self, s: &[&[usize]]) -> Result<f64> {
        self.case.flops(s)
    }
    /// Output element `at` (in the output's layout's order) from the NCHW case's pointwise
    /// reference (the input put back in NCHW order on each call: for spot checks).
    fn expected_at(&self, i: &[HostTensor], at: usize) -> Option<Result<f64>> {
        let at_nchw = || -> Result<(Vec<HostTensor>, usize)> {
            let [_, c, h, w] = self.output_shape(i)?;
            let j = match self.layouts.output {
                // at = ((img·H + y)·W + x)·C + ch
                Layout::ChannelsLast => {
                    let (ch, x, y, img) = (at % c, at / c % w, at / (c * w) % h, at / (c * w * h));
                    ((img * c + ch) * h + y) * w + x
                }
                Layout::Contiguous => at,
            };
            Ok((self.nchw(i, true)?, j))
        };
        match at_nchw() {
            Ok((v, j)) => self.case.expected_at(&v, j),
            Err(e) => Some(Err(e)),
        }
    }
    fn applies(&self) -> bool {
        self.case.applies()
    }
    fn simpler(&self) -> Vec<Self> {
        self.case.simpler().into_iter().map(|c| LayoutCase::new(c, self.layouts)).collect()
    }
}

/// Each case in turn with each layout mix (input channels-last; output; both).
pub fn with_layouts<C: Clone>(cases: &[C]) -> Vec<LayoutCase<C>> {
    use crate::ops::conv2d::Conv2dLayouts;
    let (cl, nchw) = (Layout::ChannelsLast, Layout::Contiguous);
    let mixes = [(cl, nchw), (nchw, cl), (cl, cl)];
    cases
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let (input, output) = mixes[i % 3];
            LayoutCase::new(c.clone(), Conv2dLayouts { input, output })
        })
        .collect()
}

/// The cases with each layout mix in turn ([`with_layouts`]) and an algorithm in turn (Auto
/// and each of [`Algorithm::ALL`]; where it cannot run a case, the runner leaves the case
/// out): what `conv2d/channels_last` runs.
pub fn with_channels_last(cases: &[Conv2dCase]) -> Vec<LayoutCase<Conv2dCase>> {
    let algorithms: Vec<Algorithm> = std::iter::once(Algorithm::Auto).chain(Algorithm::ALL).collect();
    let forced: Vec<Conv2dCase> = cases
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let algorithm = algorithms[(i / 3) % algorithms.len()];
            Conv2dCase { params: Conv2dParams { algorithm, ..c.params }, ..c.clone() }
        })
        .collect();
    with_layouts(&forced)
}

/// The cases with `algorithm` forced.
pub(super) fn with_algorithm(cases: &[Conv2dCase], algorithm: Algorithm) -> Vec<Conv2dCase> {
    cases.iter().map(|c| Conv2dCase { params: Conv2dParams { algorithm, ..c.params }, ..c.clone() }).collect()
}

/// Runs `cases` on the GPU with `algorithm` and compares each with `oracle`. Cases the
/// algorithm cannot run are left out of the count (blocking; native only).
#[cfg(not(target_arch = "wasm32"))]
pub fn run_conv2d(
    ctx: &GpuContext,
    cases: &[Conv2dCase],
    algorithm: Algorithm,
    tol: Tolerance,
    oracle: Conv2dOracle,
) -> OpSummary {
    let cases: Vec<Oracled> =
        with_algorithm(cases, algorithm).into_iter().map(|case| Oracled { case, oracle }).collect();
    run_op(ctx, format!("conv2d/{}", algorithm.name()), &cases, DType::F32, tol)
}

/// Smaller variants of a case, each one step simpler (used to shrink a failure).
pub(super) fn simpler(c: &Conv2dCase) -> Vec<Conv2dCase> {
    let mut out = Vec::new();
    let g = c.params.groups as usize;
    let (cig, cog) = (c.input[1] / g, c.weight[0] / g);
    let mut push = |f: &dyn Fn(&mut Conv2dCase)| {
        let mut d = c.clone();
        f(&mut d);
        if d != *c {
            out.push(d);
        }
    };
    push(&|d| d.input[0] = 1);
    push(&|d| d.bias = false);
    push(&|d| d.input[2] = (d.input[2] / 2).max(1));
    push(&|d| d.input[3] = (d.input[3] / 2).max(1));
    push(&|d| d.input[2] = d.input[2].saturating_sub(1).max(1));
    push(&|d| d.input[3] = d.input[3].saturating_sub(1).max(1));
    push(&|d| d.weight[2] = d.weight[2].saturating_sub(1).max(1));
    push(&|d| d.weight[3] = d.weight[3].saturating_sub(1).max(1));
    push(&|d| d.params.stride = [1, 1]);
    push(&|d| d.params.dilation = [1, 1]);
    push(&|d| d.params.padding = Padding::Valid);
    push(&|d| {
        // one group, keeping the per-group channel counts
        d.params.groups = 1;
        d.input[1] = cig;
        d.weight[0] = cog;
    });
    if cig > 1 {
        push(&|d| {
            d.input[1] = g * (cig - 1);
            d.weight[1] = cig - 1;
        });
    }
    if cog > 1 {
        push(&|d| d.weight[0] = g * (cog - 1));
    }
    out.retain(|d| d.params.validate(&d.input, &d.weight, None).is_ok());
    out
}

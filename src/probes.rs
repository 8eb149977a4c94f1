//! Conformance probes: the regions where faults hide that small random cases never reach.
//! `wgconv conformance` runs them beside its random cases, knowing nothing of any fault:
//!
//! - **long reductions**: outputs that sum 65535, 65536 and ~100k terms (and ~1M with
//!   [`ProbeScale::Full`]) through every op and algorithm, forward and backward, pooling too;
//! - **special values**: NaN, ±∞, huge (±1e18), tiny (1e-30) and subnormal (1e-40) inputs,
//!   a NaN bias channel, and the same in the weights of unpadded convs, through every fused
//!   activation; NaN and ±∞ in the input, the weight and grad_output of backward passes next
//!   to the padding (dense and depthwise conv2d, conv_transpose2d); and NaN, ±∞ in the
//!   input, an ∞ in the weight (and NaN, ±∞ in grad_output) of every op's and algorithm's
//!   generated cases (`probe/special/<op>`, 4 per op, 12 with [`ProbeScale::Full`]); NaN and
//!   ∞ must come out exactly where the f64 reference has them;
//! - **f16 limits**: values up to ±65504 and down to f16's smallest subnormal through an
//!   identity conv (exact), large-magnitude convs within range, and a value past the range
//!   that must be refused, never stored as ∞ in silence.

use crate::conformance::{outputs_async, OpSummary};
use crate::context::GpuContext;
use crate::error::{Error, Result};
use crate::ops::pool2d::PoolMode;
use crate::params::{
    Activation, Algorithm, Conv1dParams, Conv2dParams, Conv3dParams, ConvTranspose2dParams, Padding, Pool2dParams,
};
use crate::tensor::{DType, HostTensor, Tensor};
use crate::verify::{compare, ErrorStats, SplitMix64, Tolerance};

/// How far the long-reduction probes go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeScale {
    /// 65535, 65536 and ~100k terms per output.
    Quick,
    /// Also ~1M terms per output.
    Full,
}

impl ProbeScale {
    fn terms(self) -> Vec<usize> {
        match self {
            ProbeScale::Quick => vec![65535, 65536, 100_003],
            ProbeScale::Full => vec![65535, 65536, 100_003, 1 << 20],
        }
    }
}

/// Long sums in f32 against f64: √K growth of the rounding error, never an indexing error.
const LONG: Tolerance = Tolerance { rel_l2: 1e-4, abs: 1e-3 };

/// Every probe row (blocking; native only: the web awaits [`run_probes_async`]).
#[cfg(not(target_arch = "wasm32"))]
pub fn run_probes(ctx: &GpuContext, scale: ProbeScale) -> Vec<OpSummary> {
    pollster::block_on(run_probes_async(ctx, scale))
}

/// [`run_probes`] as a future.
pub async fn run_probes_async(ctx: &GpuContext, scale: ProbeScale) -> Vec<OpSummary> {
    let mut rows = long_reductions(ctx, scale).await;
    rows.extend(special_values(ctx).await);
    // NaN and ±∞ through every op's and algorithm's generated geometry
    let per_op = if scale == ProbeScale::Full { 12 } else { 4 };
    for mut row in crate::conformance::special_cases_async(ctx, 2026, per_op).await {
        row.op = format!("probe/{}", row.op);
        rows.push(row);
    }
    rows.extend(f16_limits(ctx).await);
    rows
}

fn up(ctx: &GpuContext, h: &HostTensor) -> Result<Tensor> {
    Tensor::from_host(ctx, h)
}

fn up_opt(ctx: &GpuContext, h: Option<&HostTensor>) -> Result<Option<Tensor>> {
    h.map(|h| up(ctx, h)).transpose()
}

/// A plane `h × w` whose sides multiply to about `pixels`.
fn plane_of(pixels: usize) -> (usize, usize) {
    let h = (pixels as f64).sqrt() as usize;
    (h, pixels.div_ceil(h))
}

/// Outputs summing `terms` values each, per op.
async fn long_reductions(ctx: &GpuContext, scale: ProbeScale) -> Vec<OpSummary> {
    let mut conv2d = OpSummary::new("probe/long/conv2d".into());
    let mut others = OpSummary::new("probe/long/conv1d+conv3d+transposed".into());
    let mut deform = OpSummary::new("probe/long/deform_conv2d".into());
    let mut separable = OpSummary::new("probe/long/separable_conv2d".into());
    let mut backward = OpSummary::new("probe/long/conv2d_backward".into());
    let mut pool = OpSummary::new("probe/long/pool2d".into());
    for t in scale.terms() {
        let full = t < (1 << 20); // every algorithm below ~1M terms, Auto at ~1M (time)
                                  // conv2d: 1x1 over t channels, and 3x3 over ⌈t/9⌉ channels
        for (c_in, k, side) in [(t, 1, 2), (t.div_ceil(9), 3, 3)] {
            let x = HostTensor::random(&[1, c_in, side, side], t as u64);
            let w = HostTensor::random(&[2, c_in, k, k], t as u64 ^ 1);
            let b = HostTensor::random(&[2], 5);
            let algos: Vec<Algorithm> = if full {
                [Algorithm::Auto, Algorithm::ImplicitGemm, Algorithm::Im2colGemm, Algorithm::Gemm1x1].into()
            } else {
                vec![Algorithm::Auto]
            };
            for algorithm in algos {
                let p = Conv2dParams { algorithm, ..Default::default() };
                if p.validate(&x.shape, &w.shape, Some(&[2])).is_err() {
                    continue;
                }
                conv2d.record(
                    &format!("conv2d/{} x{:?} w{:?} ({} terms)", algorithm.name(), x.shape, w.shape, c_in * k * k),
                    async {
                        let (_, r) = crate::reference::conv2d(&x, &w, Some(&b), &p)?;
                        let y = outputs_async(ctx, &[&r], || {
                            Ok(vec![crate::ops::conv2d::conv2d(
                                ctx,
                                &up(ctx, &x)?,
                                &up(ctx, &w)?,
                                Some(&up(ctx, &b)?),
                                &p,
                            )?])
                        })
                        .await?;
                        Ok::<_, Error>(compare(&y[0], &r))
                    }
                    .await,
                    LONG,
                );
            }
        }
        // conv1d, conv3d and conv_transpose2d over t channels
        let x1 = HostTensor::random(&[1, t, 3], 11);
        let w1 = HostTensor::random(&[2, t, 1], 12);
        others.record(
            &format!("conv1d x{:?} ({t} terms)", x1.shape),
            async {
                let p = Conv1dParams::default();
                let (_, r) = crate::reference::conv1d(&x1, &w1, None, &p)?;
                let y = outputs_async(ctx, &[&r], || {
                    Ok(vec![crate::ops::conv1d::conv1d(ctx, &up(ctx, &x1)?, &up(ctx, &w1)?, None, &p)?])
                })
                .await?;
                Ok::<_, Error>(compare(&y[0], &r))
            }
            .await,
            LONG,
        );
        let x3 = HostTensor::random(&[1, t, 1, 1, 2], 13);
        let w3 = HostTensor::random(&[2, t, 1, 1, 1], 14);
        others.record(
            &format!("conv3d x{:?} ({t} terms)", x3.shape),
            async {
                let p = Conv3dParams::default();
                let (_, r) = crate::reference::conv3d(&x3, &w3, None, &p)?;
                let y = outputs_async(ctx, &[&r], || {
                    Ok(vec![crate::ops::conv3d::conv3d(ctx, &up(ctx, &x3)?, &up(ctx, &w3)?, None, &p)?])
                })
                .await?;
                Ok::<_, Error>(compare(&y[0], &r))
            }
            .await,
            LONG,
        );
        let xt = HostTensor::random(&[1, t, 2, 2], 15);
        let wt = HostTensor::random(&[t, 2, 1, 1], 16);
        for algorithm in Algorithm::TRANSPOSED {
            others.record(
                &format!("conv_transpose2d/{} x{:?} ({t} terms)", algorithm.name(), xt.shape),
                async {
                    let p = ConvTranspose2dParams { algorithm, ..Default::default() };
                    let (_, r) = crate::reference::conv_transpose2d(&xt, &wt, None, &p)?;
                    let y = outputs_async(ctx, &[&r], || {
                        Ok(vec![crate::ops::conv_transpose2d::conv_transpose2d(
                            ctx,
                            &up(ctx, &xt)?,
                            &up(ctx, &wt)?,
                            None,
                            &p,
                        )?])
                    })
                    .await?;
                    Ok::<_, Error>(compare(&y[0], &r))
                }
                .await,
                LONG,
            );
        }
        // deform_conv2d: 3x3 taps over ⌈t/9⌉ channels, offsets within ±0.5, a mask
        let c = t.div_ceil(9);
        let xd = HostTensor::random(&[1, c, 3, 3], 17);
        let wd = HostTensor::random(&[2, c, 3, 3], 18);
        let off = HostTensor {
            data: HostTensor::random(&[1, 18, 1, 1], 19).data.iter().map(|v| v * 0.5).collect(),
            shape: vec![1, 18, 1, 1],
        };
        let mask = HostTensor::random(&[1, 9, 1, 1], 20);
        for algorithm in [Algorithm::ImplicitGemm, Algorithm::Im2colGemm] {
            // a forced im2col_gemm refuses an offset group past the loop budget (one loop per
            // sample; ~1M terms): a clear error by design (tests/ops/long_reductions.rs), no probe case
            if algorithm == Algorithm::Im2colGemm && c as u64 + 1 > ctx.config().loop_budget as u64 {
                continue;
            }
            deform.record(
                &format!("deform_conv2d/{} x{:?} ({} terms)", algorithm.name(), xd.shape, c * 9),
                async {
                    let p = Conv2dParams { algorithm, ..Default::default() };
                    let (_, r) = crate::reference::deform_conv2d(&xd, &wd, &off, Some(&mask), None, &p)?;
                    let y = outputs_async(ctx, &[&r], || {
                        Ok(vec![crate::ops::deform_conv2d::deform_conv2d(
                            ctx,
                            &up(ctx, &xd)?,
                            &up(ctx, &wd)?,
                            &up(ctx, &off)?,
                            Some(&up(ctx, &mask)?),
                            None,
                            &p,
                        )?])
                    })
                    .await?;
                    Ok::<_, Error>(compare(&y[0], &r))
                }
                .await,
                LONG,
            );
        }
        // separable: the pointwise stage sums t channels (two passes and fused)
        let xs = HostTensor::random(&[1, t, 2, 2], 21);
        let dws = HostTensor::random(&[t, 1, 1, 1], 22);
        let pws = HostTensor::random(&[2, t, 1, 1], 23);
        for fused in [false, true] {
            separable.record(
                &format!("separable_conv2d/{} x{:?} ({t} terms)", if fused { "fused" } else { "two_pass" }, xs.shape),
                async {
                    use crate::ops::separable_conv2d::{separable_conv2d, SeparableParams};
                    let p = SeparableParams { fused, ..Default::default() };
                    let dwp = Conv2dParams { groups: t as u32, ..Default::default() };
                    let (ms, m) = crate::reference::conv2d(&xs, &dws, None, &dwp)?;
                    let m = HostTensor::new(&ms, m.iter().map(|&v| v as f32).collect())?;
                    let (_, r) = crate::reference::conv2d(&m, &pws, None, &Conv2dParams::default())?;
                    let y = outputs_async(ctx, &[&r], || {
                        Ok(vec![separable_conv2d(
                            ctx,
                            &up(ctx, &xs)?,
                            &up(ctx, &dws)?,
                            None,
                            &up(ctx, &pws)?,
                            None,
                            &p,
                        )?])
                    })
                    .await?;
                    Ok::<_, Error>(compare(&y[0], &r))
                }
                .await,
                LONG,
            );
        }
        // backward: grad_weight and grad_bias sum over t output pixels (dense and depthwise)
        let (h, w) = plane_of(t);
        for groups in [1u32, 2] {
            let x = HostTensor::random(&[1, 2, h, w], 24);
            let wt = HostTensor::random(&[2, 2 / groups as usize, 3, 3], 25);
            let p = Conv2dParams { padding: Padding::Symmetric([1, 1]), groups, ..Default::default() };
            let dy = HostTensor::random(&[1, 2, h, w], 26);
            backward.record(
                &format!("conv2d_backward x{:?} groups {groups} ({} pixels)", x.shape, h * w),
                async {
                    let (rdx, rdw, rdb) = crate::reference::conv2d_backward(&x, &wt, &dy, &p)?;
                    let g = outputs_async(ctx, &[&rdx, &rdw, &rdb], || {
                        let g = crate::ops::conv2d_backward::conv2d_backward(
                            ctx,
                            &up(ctx, &x)?,
                            &up(ctx, &wt)?,
                            &up(ctx, &dy)?,
                            &p,
                            crate::ops::conv2d_backward::Grads::ALL,
                        )?;
                        let asked = "all gradients were asked for";
                        Ok(vec![g.grad_input.expect(asked), g.grad_weight.expect(asked), g.grad_bias.expect(asked)])
                    })
                    .await?;
                    let worst = |a: ErrorStats, b: ErrorStats| if b.passes(LONG) { a } else { b };
                    let dx = compare(&g[0], &rdx);
                    let dw = compare(&g[1], &rdw);
                    let db = compare(&g[2], &rdb);
                    Ok::<_, Error>(worst(worst(dx, dw), db))
                }
                .await,
                LONG,
            );
        }
        // global pooling of ~t positions, the maximum at the very last one
        let mut xp = HostTensor::random(&[1, 1, h, w], 27);
        *xp.data.last_mut().expect("not empty") = 9.0;
        for mode in [PoolMode::Max, PoolMode::Avg] {
            let p = Pool2dParams::new([h as u32, w as u32]);
            pool.record(
                &format!("{mode:?} pool x{:?} ({} positions)", xp.shape, h * w),
                async {
                    let (_, r) = crate::reference::pool2d(&xp, &p, mode)?;
                    let y = outputs_async(ctx, &[&r], || {
                        Ok(vec![crate::ops::pool2d::pool2d(ctx, &up(ctx, &xp)?, &p, mode)?])
                    })
                    .await?;
                    Ok::<_, Error>(compare(&y[0], &r))
                }
                .await,
                LONG,
            );
        }
    }
    vec![conv2d, others, deform, separable, backward, pool]
}

/// NaN, ±∞, huge, tiny, subnormal and −0.
const SPECIAL: [f32; 8] = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 1e18, -1e18, 1e-30, 1e-40, -0.0];

/// [`SPECIAL`] less the subnormal, for tensors whose values meet infinities in one product.
/// WGSL lets an implementation flush subnormals to zero (SwiftShader does), and then
/// 1e-40·∞ is 0·∞ = NaN where IEEE arithmetic (and PyTorch) give ∞: a product that no
/// portable kernel can pin down, so the probes do not form it.
const SPECIAL_NORMAL: [f32; 7] = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 1e18, -1e18, 1e-30, -0.0];

/// `values` planted at seeded positions of `t` (the rest stays random in [-1, 1)).
fn plant(t: &mut HostTensor, seed: u64, values: &[f32]) {
    let mut rng = SplitMix64::new(seed);
    let n = t.data.len() as u32;
    for &v in values {
        let i = rng.range(0, n - 1) as usize;
        t.data[i] = v;
    }
}

/// The special-value conv's input, weight and bias: specials in the input and a NaN bias
/// channel; with `special_weights`, specials in the weights too and then no subnormal on
/// either side (see [`SPECIAL_NORMAL`]).
fn special_operands(special_weights: bool) -> (HostTensor, HostTensor, HostTensor) {
    let mut x = HostTensor::random(&[2, 4, 7, 6], 31);
    plant(&mut x, 32, if special_weights { &SPECIAL_NORMAL } else { &SPECIAL });
    let mut w = HostTensor::random(&[6, 4, 3, 3], 33);
    if special_weights {
        plant(&mut w, 34, &SPECIAL_NORMAL);
    }
    let mut b = HostTensor::random(&[6], 35);
    b.data[2] = f32::NAN;
    (x, w, b)
}

/// conv_transpose2d of `x` by `w` plus `b` with `p`, against the reference.
async fn transposed(
    ctx: &GpuContext,
    (x, w, b): (&HostTensor, &HostTensor, &HostTensor),
    p: &ConvTranspose2dParams,
) -> Result<ErrorStats> {
    let (_, r) = crate::reference::conv_transpose2d(x, w, Some(b), p)?;
    let y = outputs_async(ctx, &[&r], || {
        let (xt, wt, bt) = (up(ctx, x)?, up(ctx, w)?, up(ctx, b)?);
        Ok(vec![crate::ops::conv_transpose2d::conv_transpose2d(ctx, &xt, &wt, Some(&bt), p)?])
    })
    .await?;
    Ok(compare(&y[0], &r))
}

/// NaN, ±∞, huge, tiny and subnormal values in input, bias and (unpadded) weights: conv2d
/// through every activation (every algorithm with none and relu), the other ops with an
/// epilogue through none, relu and tanh.
async fn special_values(ctx: &GpuContext) -> Vec<OpSummary> {
    let mut conv = OpSummary::new("probe/special/conv2d".into());
    let mut others = OpSummary::new("probe/special/conv1d+conv3d+transposed+deform".into());
    let tol = Tolerance::default();
    // (padded case: specials in input and bias; unpadded: in the weights too)
    for (padding, special_weights) in [(Padding::Symmetric([1, 1]), false), (Padding::Valid, true)] {
        let (x, w, b) = special_operands(special_weights);
        for activation in Activation::ALL {
            // each (activation, algorithm) pair compiles a pipeline: every algorithm with none
            // and relu, the other activations through Auto
            let algorithms: Vec<Algorithm> = match activation {
                Activation::None | Activation::Relu => std::iter::once(Algorithm::Auto).chain(Algorithm::ALL).collect(),
                _ => vec![Algorithm::Auto],
            };
            for algorithm in algorithms {
                let p = Conv2dParams { padding, activation, algorithm, ..Default::default() };
                if p.validate(&x.shape, &w.shape, Some(&[6])).is_err() {
                    continue;
                }
                conv.record(
                    &format!(
                        "conv2d/{} {activation:?} padding {padding:?} special weights {special_weights}",
                        algorithm.name()
                    ),
                    async {
                        let (_, r) = crate::reference::conv2d(&x, &w, Some(&b), &p)?;
                        let y = outputs_async(ctx, &[&r], || {
                            Ok(vec![crate::ops::conv2d::conv2d(
                                ctx,
                                &up(ctx, &x)?,
                                &up(ctx, &w)?,
                                Some(&up(ctx, &b)?),
                                &p,
                            )?])
                        })
                        .await?;
                        Ok::<_, Error>(compare(&y[0], &r))
                    }
                    .await,
                    tol,
                );
            }
            if special_weights && activation == Activation::None {
                // conv_transpose2d with special weights: a tap outside the input must add
                // nothing (the scatter), not 0·∞ = NaN (the output phases' border pass)
                let mut wt = HostTensor::random(&[4, 6, 3, 3], 40);
                plant(&mut wt, 41, &SPECIAL_NORMAL);
                let algorithms = [Algorithm::ImplicitGemm, Algorithm::GemmCol2im, Algorithm::Winograd];
                for (stride, output_padding) in [([1, 1], [0, 0]), ([2, 2], [1, 1])] {
                    for algorithm in algorithms {
                        let p = ConvTranspose2dParams {
                            stride,
                            padding: Padding::Symmetric([1, 1]),
                            output_padding,
                            algorithm,
                            ..Default::default()
                        };
                        if p.validate(&x.shape, &wt.shape, Some(&[6])).is_err() {
                            continue;
                        }
                        let name = format!("conv_transpose2d/{} stride {stride:?} special weights", algorithm.name());
                        others.record(&name, transposed(ctx, (&x, &wt, &b), &p).await, tol);
                    }
                }
            }
            if special_weights || !matches!(activation, Activation::None | Activation::Relu | Activation::Tanh) {
                continue;
            }
            // the other ops with an epilogue, specials in the input and bias
            let x1 = HostTensor { shape: vec![2, 4, 42], data: x.data.clone() };
            let w1 = HostTensor::random(&[6, 4, 3], 36);
            others.record(
                &format!("conv1d {activation:?}"),
                async {
                    let p = Conv1dParams { activation, ..Default::default() };
                    let (_, r) = crate::reference::conv1d(&x1, &w1, Some(&b), &p)?;
                    let y = outputs_async(ctx, &[&r], || {
                        Ok(vec![crate::ops::conv1d::conv1d(
                            ctx,
                            &up(ctx, &x1)?,
                            &up(ctx, &w1)?,
                            Some(&up(ctx, &b)?),
                            &p,
                        )?])
                    })
                    .await?;
                    Ok::<_, Error>(compare(&y[0], &r))
                }
                .await,
                tol,
            );
            let x3 = HostTensor { shape: vec![2, 4, 2, 7, 3], data: x.data.clone() };
            let w3 = HostTensor::random(&[6, 4, 1, 3, 3], 37);
            others.record(
                &format!("conv3d {activation:?}"),
                async {
                    let p = Conv3dParams { activation, ..Default::default() };
                    let (_, r) = crate::reference::conv3d(&x3, &w3, Some(&b), &p)?;
                    let y = outputs_async(ctx, &[&r], || {
                        Ok(vec![crate::ops::conv3d::conv3d(
                            ctx,
                            &up(ctx, &x3)?,
                            &up(ctx, &w3)?,
                            Some(&up(ctx, &b)?),
                            &p,
                        )?])
                    })
                    .await?;
                    Ok::<_, Error>(compare(&y[0], &r))
                }
                .await,
                tol,
            );
            let wt = HostTensor::random(&[4, 6, 3, 3], 38);
            for algorithm in Algorithm::TRANSPOSED {
                let p = ConvTranspose2dParams { stride: [2, 2], activation, algorithm, ..Default::default() };
                let name = format!("conv_transpose2d/{} {activation:?}", algorithm.name());
                others.record(&name, transposed(ctx, (&x, &wt, &b), &p).await, tol);
            }
            // deform: huge offsets send samples far outside (they read 0)
            let mut off = HostTensor::random(&[2, 18, 5, 4], 39);
            off.data[3] = 1e10;
            off.data[40] = -1e10;
            for algorithm in [Algorithm::ImplicitGemm, Algorithm::Im2colGemm] {
                others.record(
                    &format!("deform_conv2d/{} {activation:?}", algorithm.name()),
                    async {
                        let p = Conv2dParams { activation, algorithm, ..Default::default() };
                        let (_, r) = crate::reference::deform_conv2d(&x, &w, &off, None, Some(&b), &p)?;
                        let y = outputs_async(ctx, &[&r], || {
                            Ok(vec![crate::ops::deform_conv2d::deform_conv2d(
                                ctx,
                                &up(ctx, &x)?,
                                &up(ctx, &w)?,
                                &up(ctx, &off)?,
                                None,
                                up_opt(ctx, Some(&b))?.as_ref(),
                                &p,
                            )?])
                        })
                        .await?;
                        Ok::<_, Error>(compare(&y[0], &r))
                    }
                    .await,
                    tol,
                );
            }
        }
    }
    // depthwise (its own kernel), specials in the input near the borders too
    let mut x = HostTensor::random(&[1, 4, 6, 7], 51);
    plant(&mut x, 52, &SPECIAL);
    x.data[0] = f32::INFINITY;
    x.data[6] = f32::NAN;
    let w = HostTensor::random(&[8, 1, 3, 3], 53);
    for activation in [Activation::None, Activation::Relu, Activation::Relu6] {
        for algorithm in [Algorithm::Depthwise, Algorithm::ImplicitGemm] {
            let p = Conv2dParams {
                padding: Padding::Symmetric([1, 1]),
                groups: 4,
                activation,
                algorithm,
                ..Default::default()
            };
            conv.record(
                &format!("depthwise conv2d/{} {activation:?}", algorithm.name()),
                async {
                    let (_, r) = crate::reference::conv2d(&x, &w, None, &p)?;
                    let y = outputs_async(ctx, &[&r], || {
                        Ok(vec![crate::ops::conv2d::conv2d(ctx, &up(ctx, &x)?, &up(ctx, &w)?, None, &p)?])
                    })
                    .await?;
                    Ok::<_, Error>(compare(&y[0], &r))
                }
                .await,
                tol,
            );
        }
    }
    vec![conv, others, special_backward(ctx).await]
}

/// The backward passes with NaN and ±∞ at the ends of the input, one tap of the weight and
/// grad_output (a corner and a middle): every gradient special exactly where the reference's
/// is (autograd through the zero padding, see [`crate::reference::conv2d_backward()`]):
/// conv2d dense (the GEMM paths) and depthwise at stride 1 and 2 (their own kernels,
/// grad_input one launch per phase of the stride), conv_transpose2d with a cropped border.
async fn special_backward(ctx: &GpuContext) -> OpSummary {
    let mut back = OpSummary::new("probe/special/backward".into());
    let tol = Tolerance::default();
    let specials = |x: &mut HostTensor, w: &mut HostTensor, dy: &mut HostTensor| {
        let last = x.data.len() - 1;
        (x.data[0], x.data[last]) = (f32::INFINITY, f32::NAN);
        let tap = w.data.len() / w.shape[0] + 4;
        w.data[tap] = f32::NEG_INFINITY;
        let plane = dy.shape[2] * dy.shape[3];
        let middle = dy.data.len() - plane / 2 - 1;
        (dy.data[plane - 1], dy.data[middle]) = (f32::NAN, f32::INFINITY);
    };
    let grads = |g: crate::ops::conv2d_backward::Conv2dGrads| -> Result<Vec<Tensor>> {
        let missing = || Error::Unsupported("a gradient asked for is missing".into());
        Ok(vec![
            g.grad_input.ok_or_else(missing)?,
            g.grad_weight.ok_or_else(missing)?,
            g.grad_bias.ok_or_else(missing)?,
        ])
    };
    let all = crate::ops::conv2d_backward::Grads::ALL;
    for (name, groups, stride) in [("dense", 1, 1), ("depthwise", 4, 1), ("depthwise, stride 2", 4, 2)] {
        back.record(
            &format!("conv2d_backward {name}"),
            async {
                let p = Conv2dParams {
                    padding: Padding::Symmetric([1, 1]),
                    groups,
                    stride: [stride; 2],
                    ..Default::default()
                };
                let mut x = HostTensor::random(&[2, 4, 7, 6], 61);
                let mut w = HostTensor::random(&[4, 4 / groups as usize, 3, 3], 62);
                let mut dy = HostTensor::random(&p.output_shape(&x.shape, &w.shape)?, 63);
                specials(&mut x, &mut w, &mut dy);
                let (dx, dw, db) = crate::reference::conv2d_backward(&x, &w, &dy, &p)?;
                let y = outputs_async(ctx, &[&dx, &dw, &db], || {
                    let (xt, wt, dyt) = (up(ctx, &x)?, up(ctx, &w)?, up(ctx, &dy)?);
                    grads(crate::ops::conv2d_backward::conv2d_backward(ctx, &xt, &wt, &dyt, &p, all)?)
                })
                .await?;
                Ok::<_, Error>(compare(&y.concat(), &[dx, dw, db].concat()))
            }
            .await,
            tol,
        );
    }
    back.record(
        &"conv_transpose2d_backward, cropped border",
        async {
            let p = ConvTranspose2dParams { stride: [2, 2], padding: Padding::Symmetric([1, 1]), ..Default::default() };
            let mut x = HostTensor::random(&[1, 4, 5, 6], 64);
            let mut w = HostTensor::random(&[4, 3, 3, 3], 65);
            let mut dy = HostTensor::random(&p.output_shape(&x.shape, &w.shape)?, 66);
            specials(&mut x, &mut w, &mut dy);
            let (dx, dw, db) = crate::reference::conv_transpose2d_backward(&x, &w, &dy, &p)?;
            let y = outputs_async(ctx, &[&dx, &dw, &db], || {
                let (xt, wt, dyt) = (up(ctx, &x)?, up(ctx, &w)?, up(ctx, &dy)?);
                grads(crate::ops::conv_transpose2d_backward::conv_transpose2d_backward(ctx, &xt, &wt, &dyt, &p, all)?)
            })
            .await?;
            Ok::<_, Error>(compare(&y.concat(), &[dx, dw, db].concat()))
        }
        .await,
        tol,
    );
    back
}

/// f16 at its limits (skipped without `SHADER_F16`).
async fn f16_limits(ctx: &GpuContext) -> Option<OpSummary> {
    if !ctx.device.features().contains(wgpu::Features::SHADER_F16) {
        return None;
    }
    let mut s = OpSummary::new("probe/f16_limits".into());
    let f16_tol = Tolerance { rel_l2: 1e-3, abs: 1e-3 };
    // an identity 1x1 conv passes f16's extremes through exactly
    let edge = [65504.0f32, -65504.0, 6.1035156e-5, 5.9604645e-8, -5.9604645e-8, 0.0, 1.0, 32768.5];
    let c = edge.len();
    let x = HostTensor { shape: vec![1, c, 1, 3], data: (0..3 * c).map(|i| edge[(i / 3 + i) % c]).collect() };
    let mut w = HostTensor { shape: vec![c, c, 1, 1], data: vec![0.0; c * c] };
    for i in 0..c {
        w.data[i * c + i] = 1.0;
    }
    s.record(
        &"f16 identity conv at ±65504 and the subnormals",
        async {
            let x16 = x.clone().rounded_to(DType::F16);
            let t = |h: &HostTensor| Tensor::from_slice_as(ctx, &h.shape, &h.data, DType::F16);
            let want: Vec<f64> = x16.data.iter().map(|&v| v as f64).collect();
            let y = outputs_async(ctx, &[&want], || {
                Ok(vec![crate::ops::conv2d::conv2d(ctx, &t(&x16)?, &t(&w)?, None, &Conv2dParams::default())?])
            })
            .await?;
            let exact = y[0].iter().zip(&x16.data).all(|(a, b)| a == b);
            let stats = compare(&y[0], &want);
            Ok::<_, Error>(if exact { stats } else { ErrorStats { max_abs: f64::INFINITY, ..stats } })
        }
        .await,
        f16_tol,
    );
    // large magnitudes whose sums stay within range
    let x = HostTensor {
        shape: vec![1, 8, 6, 6],
        data: HostTensor::random(&[288], 41).data.iter().map(|v| v * 3e4).collect(),
    };
    let w = HostTensor {
        shape: vec![4, 8, 3, 3],
        data: HostTensor::random(&[288], 42).data.iter().map(|v| v * 1e-3).collect(),
    };
    for algorithm in [Algorithm::Auto, Algorithm::ImplicitGemm] {
        s.record(
            &format!("f16 conv2d/{} inputs up to 3e4", algorithm.name()),
            async {
                let (x16, w16) = (x.clone().rounded_to(DType::F16), w.clone().rounded_to(DType::F16));
                let p = Conv2dParams { padding: Padding::Symmetric([1, 1]), algorithm, ..Default::default() };
                let (_, r) = crate::reference::conv2d(&x16, &w16, None, &p)?;
                let t = |h: &HostTensor| Tensor::from_slice_as(ctx, &h.shape, &h.data, DType::F16);
                let y = outputs_async(ctx, &[&r], || {
                    Ok(vec![crate::ops::conv2d::conv2d(ctx, &t(&x16)?, &t(&w16)?, None, &p)?])
                })
                .await?;
                Ok::<_, Error>(compare(&y[0], &r))
            }
            .await,
            f16_tol,
        );
    }
    // a value past the range is refused, never stored as ∞ in silence
    s.record(
        &"f16 upload of 7e4 is refused",
        match Tensor::from_slice_as(ctx, &[2], &[1.0, 7e4], DType::F16) {
            Err(Error::F16Range { count: 1, .. }) => Ok(compare(&[0.0], &[0.0])),
            Err(e) => Err(e),
            Ok(_) => Err(Error::Internal("7e4 was stored as f16 without an error".into())),
        },
        f16_tol,
    );
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SwiftShader flushes subnormals (as WGSL allows): 1e-40·∞ became 0·∞ = NaN where the
    /// reference has ∞, in 13 special-value cases replayed in Chromium. No probe may pair the
    /// two in one product.
    #[test]
    fn special_probes_never_multiply_a_subnormal_by_an_infinity() {
        let subnormal = |t: &HostTensor| t.data.iter().any(|v| v.is_subnormal());
        let infinite = |t: &HostTensor| t.data.iter().any(|v| v.is_infinite());
        for special_weights in [false, true] {
            let (x, w, _) = special_operands(special_weights);
            assert!(!(subnormal(&x) && infinite(&w)), "special_weights {special_weights}");
            assert!(!(subnormal(&w) && infinite(&x)), "special_weights {special_weights}");
        }
        // the padded case still sends a subnormal through (against finite weights)
        assert!(subnormal(&special_operands(false).0));
        // and the check can fail: the full list in the weights pairs them
        let mut w = HostTensor::random(&[6, 4, 3, 3], 33);
        plant(&mut w, 34, &SPECIAL);
        assert!(subnormal(&w) && infinite(&special_operands(true).0));
    }
}

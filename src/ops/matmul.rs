//! [`matmul`]: a plain row-major GEMM on the conv kernels' core, the one the benchmark uses to
//! measure an adapter's practical ceiling.

use crate::context::GpuContext;
use crate::error::{Error, Result};
use crate::kernels::gemm::{self, prepare, GemmParams, GemmProblem};
use crate::kernels::{check_recorded, record, whole, Step, UniformArena};
use crate::ops::check_binding;
use crate::params::Activation;
use crate::tensor::Tensor;

/// Checks `a: [M, K]`, `b: [K, N]` and returns `(M, N, K)`.
fn matmul_dims(ctx: &GpuContext, a: &Tensor, b: &Tensor) -> Result<(u32, u32, u32)> {
    let (sa, sb) = (a.shape(), b.shape());
    crate::params::check_rank("a", sa, 2, "M, K")?;
    crate::params::check_rank("b", sb, 2, "K, N")?;
    if sa[1] != sb[0] {
        return Err(Error::ChannelMismatch(format!("a is {sa:?} but b is {sb:?}: inner sizes differ")));
    }
    a.check_device(ctx, "a")?;
    a.require_f32("matmul", "a")?;
    b.check_device(ctx, "b")?;
    b.require_f32("matmul", "b")?;
    check_binding(ctx, a, "a")?;
    check_binding(ctx, b, "b")?;
    match [sa[0], sb[1], sa[1]].map(u32::try_from) {
        [Ok(m), Ok(n), Ok(k)] => Ok((m, n, k)),
        _ => Err(Error::TooLarge(format!("matmul {sa:?} · {sb:?}"))),
    }
}

/// The launches of `C = A · B` for `A: [M, K]` and `B: [K, N]` (the GEMM's K passes), before
/// any GPU object. Errors: ranks or inner sizes that do not agree.
pub fn plan_matmul(ctx: &GpuContext, a: &[usize], b: &[usize]) -> Result<Vec<Step>> {
    plan_steps(ctx, a, b, (0, b.iter().product::<usize>() as u64 * 4))
}

/// [`plan_matmul`] with B bound at `b_span` (offset, bytes): an aligned B is read as vec4.
fn plan_steps(ctx: &GpuContext, a: &[usize], b: &[usize], b_span: (u64, u64)) -> Result<Vec<Step>> {
    crate::params::check_rank("a", a, 2, "M, K")?;
    crate::params::check_rank("b", b, 2, "K, N")?;
    if a[1] != b[0] {
        return Err(Error::ChannelMismatch(format!("a is {a:?} but b is {b:?}: inner sizes differ")));
    }
    let [m, n, k] = match [a[0], b[1], a[1]].map(u32::try_from) {
        [Ok(m), Ok(n), Ok(k)] => [m, n, k],
        _ => return Err(Error::TooLarge(format!("matmul {a:?} · {b:?}"))),
    };
    let p = GemmParams::new(m, n, k, 1, n, 0, 0);
    let ov = gemm::overrides(GemmProblem::Dense, Activation::None, false, &gemm::Aux::None);
    Ok(gemm::plan(ctx, &p, GemmProblem::Dense, ov, false, Some(b_span), m as usize * n as usize)?.steps("matmul"))
}

/// Records `C = A · B` (row-major `A: [M, K]`, `B: [K, N]`, `C: [M, N]`) into `encoder`.
pub fn matmul_into(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    a: &Tensor,
    b: &Tensor,
    c: &Tensor,
) -> Result<()> {
    let (m, n, k) = matmul_dims(ctx, a, b)?;
    if c.shape() != [m as usize, n as usize] {
        return Err(Error::Buffer { what: "c", reason: format!("shape {:?}, expected [{m}, {n}]", c.shape()) });
    }
    c.check_device(ctx, "c")?;
    c.require_f32("matmul", "c")?;
    check_binding(ctx, c, "c")?;
    let b_span = gemm::span(&whole(b)).ok_or_else(|| Error::Internal("matmul: B is not a buffer range".into()))?;
    let planned = plan_steps(ctx, a.shape(), b.shape(), b_span)?;
    let p = GemmParams::new(m, n, k, 1, n, 0, 0);
    ctx.scoped(|| -> Result<()> {
        let mut arena = UniformArena::new(ctx);
        let block = arena.push(&p);
        let uniforms = arena.finish(ctx)?;
        let dispatches =
            prepare(ctx, &uniforms, block, &p, GemmProblem::Dense, Activation::None, a, whole(b), None, c)?;
        record(ctx, encoder, "matmul", &dispatches);
        check_recorded("matmul", dispatches.len(), &planned)
    })?
}

/// `C = A · B`, submitted on the context's queue.
pub fn matmul(ctx: &GpuContext, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let (m, n, _) = matmul_dims(ctx, a, b)?;
    let c = Tensor::empty(ctx, &[m as usize, n as usize])?;
    let mut encoder = ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("matmul") });
    matmul_into(ctx, &mut encoder, a, b, &c)?;
    ctx.submit(encoder)?;
    Ok(c)
}

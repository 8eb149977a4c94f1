//! [`matmul`]: a plain row-major GEMM on the conv kernels' core, the one the benchmark uses to
//! measure an adapter's practical ceiling.

use crate::context::GpuContext;
use crate::error::{Error, Result};
use crate::kernels::gemm::{prepare, GemmParams, GemmProblem};
use crate::kernels::{record, whole, UniformArena};
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
    let p = GemmParams::new(m, n, k, 1, n, 0, 0);
    ctx.scoped(|| -> Result<()> {
        let mut arena = UniformArena::new(ctx);
        let block = arena.push(&p);
        let uniforms = arena.finish(ctx)?;
        let dispatches =
            prepare(ctx, &uniforms, block, &p, GemmProblem::Dense, Activation::None, a, whole(b), None, c)?;
        record(ctx, encoder, "matmul", &dispatches);
        Ok(())
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

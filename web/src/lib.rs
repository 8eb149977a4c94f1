//! wgconv for JavaScript (wasm-bindgen): the ops with `torch.nn.functional`'s (and
//! torchvision's) argument names and order, on GPU-resident tensors, and wgconv's conformance
//! run, on the page's WebGPU (or Dawn's in Node).
//!
//! ```js
//! import init, { Wgconv } from './pkg/wgconv_web.js';
//! await init();
//! const wg = await Wgconv.create();
//! const x = wg.tensor({ data: pixels, shape: [1, 3, 32, 32] });    // uploaded once
//! const w = wg.tensor({ data: weights, shape: [8, 3, 3, 3] });
//! const y = wg.max_pool2d(wg.conv2d(x, w, null, { padding: 1, activation: 'relu' }), { kernel_size: 2 });
//! const { data, shape } = await y.read();                           // [1, 8, 16, 16]
//! ```
//!
//! An op validates its arguments and submits its work at once, returning the output
//! [`Tensor`] (invalid arguments throw, with wgconv's message); nothing blocks the page, and
//! a device error shows at the next `read()` or `finish()`. The page can use the engine's
//! `GPUDevice` (`wg.device`) and a tensor's `GPUBuffer` (`t.buffer`, from `t.byteOffset`)
//! in its own passes, without copies.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use js_sys::{Array, Float32Array, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wgconv::params::{Activation, Conv2dParams, ConvTranspose2dParams, Padding, Pool2dParams};
use wgconv::{ContextOptions, GpuContext};

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &str = r#"
/// <reference types="@webgpu/types" />
/** A dense row-major f32 tensor on the CPU side: `data.length` = the product of `shape`. */
export interface HostTensor { data: Float32Array; shape: number[]; }
/** One value for both axes, or `[height, width]`. */
export type Pair = number | [number, number];
export type ActivationName = "none" | "relu" | "relu6" | "leaky_relu" | `leaky_relu:${number}` | "sigmoid" | "tanh" | "gelu";
/** torch.nn.functional.conv2d's keyword arguments (and a fused activation). */
export interface Conv2dOptions { stride?: Pair; padding?: Pair | "valid" | "same"; dilation?: Pair; groups?: number; activation?: ActivationName; }
/** torch.nn.functional.conv_transpose2d's keyword arguments. */
export interface ConvTranspose2dOptions { stride?: Pair; padding?: Pair; output_padding?: Pair; dilation?: Pair; groups?: number; activation?: ActivationName; }
/** torchvision.ops.deform_conv2d's keyword arguments (`mask` is a tensor argument). */
export interface DeformConv2dOptions { stride?: Pair; padding?: Pair; dilation?: Pair; }
/** torch.nn.functional.max_pool2d / avg_pool2d's arguments (`stride` defaults to the kernel size). */
export interface Pool2dOptions { kernel_size: Pair; stride?: Pair; padding?: Pair; ceil_mode?: boolean; dilation?: Pair; count_include_pad?: boolean; divisor_override?: number; }
export interface CreateOptions {
  /** "adapter" (default): everything the adapter offers; "default": WebGPU's default limits. */
  limits?: "adapter" | "default";
  /** How long `read()` and `finish()` wait for the GPU before rejecting (default 600000). */
  waitTimeoutMs?: number;
}
export interface OpResult { op: string; cases: number; passed: number; worst_rel_l2: number; worst_max_abs: number; failures: string[]; }
export interface ConformanceResult { adapter: string; ok: boolean; ops: OpResult[]; table: string; }
export type ProbeScale = "none" | "quick" | "full";
"#;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(typescript_type = "HostTensor")]
    pub type JsHostTensor;
    #[wasm_bindgen(typescript_type = "Conv2dOptions")]
    pub type JsConv2dOptions;
    #[wasm_bindgen(typescript_type = "ConvTranspose2dOptions")]
    pub type JsConvTranspose2dOptions;
    #[wasm_bindgen(typescript_type = "DeformConv2dOptions")]
    pub type JsDeformConv2dOptions;
    #[wasm_bindgen(typescript_type = "Pool2dOptions")]
    pub type JsPool2dOptions;
    #[wasm_bindgen(typescript_type = "CreateOptions")]
    pub type JsCreateOptions;
    #[wasm_bindgen(typescript_type = "Promise<HostTensor>")]
    pub type HostPromise;
    #[wasm_bindgen(typescript_type = "Promise<void>")]
    pub type VoidPromise;
    #[wasm_bindgen(typescript_type = "Promise<ConformanceResult>")]
    pub type ConformancePromise;
    #[wasm_bindgen(typescript_type = "number[]")]
    pub type Dims;
    #[wasm_bindgen(typescript_type = "Tensor")]
    pub type JsOptionalTensor;
    #[wasm_bindgen(typescript_type = "ProbeScale")]
    pub type JsProbeScale;
    #[wasm_bindgen(typescript_type = "GPUBuffer")]
    pub type JsGpuBuffer;
    #[wasm_bindgen(typescript_type = "GPUDevice")]
    pub type JsGpuDevice;
}

/// The engine on one WebGPU device.
#[wasm_bindgen]
pub struct Wgconv {
    ctx: Rc<GpuContext>,
}

/// A dense row-major tensor in a `GPUBuffer` of the engine's device (f32).
#[wasm_bindgen]
pub struct Tensor {
    ctx: Rc<GpuContext>,
    inner: wgconv::Tensor,
    id: u32,
}

thread_local! {
    /// Every live [`Tensor`] by id, for the optional arguments (bias, mask): wasm-bindgen
    /// borrows a class instance only as a required argument, and taking an optional one by
    /// value would empty the caller's JS object.
    static LIVE: RefCell<HashMap<u32, wgconv::Tensor>> = RefCell::new(HashMap::new());
    static NEXT_ID: Cell<u32> = const { Cell::new(1) };
}

impl Drop for Tensor {
    fn drop(&mut self) {
        LIVE.with(|l| l.borrow_mut().remove(&self.id));
    }
}

/// The tensor an optional argument names: `None` for null or undefined.
fn optional_tensor(v: Option<JsValue>, what: &str) -> Result<Option<wgconv::Tensor>, JsError> {
    let Some(v) = v.filter(|v| !v.is_null() && !v.is_undefined()) else { return Ok(None) };
    let id = Reflect::get(&v, &"id".into()).ok().and_then(|id| id.as_f64());
    id.and_then(|id| LIVE.with(|l| l.borrow().get(&(id as u32)).cloned()))
        .map(Some)
        .ok_or_else(|| JsError::new(&format!("{what}: a live Tensor (from wg.tensor or an op), null or undefined")))
}

#[wasm_bindgen]
impl Tensor {
    /// This tensor's number among the live ones (how optional arguments find it).
    #[wasm_bindgen(getter)]
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The dimensions, outermost first.
    #[wasm_bindgen(getter)]
    pub fn shape(&self) -> Dims {
        self.inner.shape().iter().map(|&d| JsValue::from_f64(d as f64)).collect::<Array>().unchecked_into()
    }

    /// The `GPUBuffer` holding the values, from [`Tensor::byte_offset`] on (usage STORAGE |
    /// COPY_SRC | COPY_DST): the page may bind it in its own passes on `wg.device`.
    #[wasm_bindgen(getter)]
    pub fn buffer(&self) -> JsGpuBuffer {
        let b: JsValue = self.inner.buffer().as_webgpu().map_or(JsValue::UNDEFINED, |b| b.clone().into());
        b.unchecked_into()
    }

    /// Where the values start in [`Tensor::buffer`], in bytes.
    #[wasm_bindgen(getter, js_name = byteOffset)]
    pub fn byte_offset(&self) -> f64 {
        self.inner.offset() as f64
    }

    /// Reads the values back once every op that writes them is done; rejects with the first
    /// device error caught since the last read or `finish()`.
    pub fn read(&self) -> HostPromise {
        let (ctx, t) = (self.ctx.clone(), self.inner.clone());
        let promise: Promise = wasm_bindgen_futures::future_to_promise(async move {
            // (mapped and copied by the browser: not through the wasm heap)
            let data = t.to_float32_array_async(&ctx).await.map_err(js)?;
            let shape: Array = t.shape().iter().map(|&d| JsValue::from_f64(d as f64)).collect();
            object(&[("data", data.into()), ("shape", shape.into())])
        });
        promise.unchecked_into()
    }
}

#[wasm_bindgen]
impl Wgconv {
    /// Opens the page's WebGPU adapter (`navigator.gpu`), asking for `shader-f16` and
    /// `timestamp-query` where it has them.
    pub async fn create(options: Option<JsCreateOptions>) -> Result<Wgconv, JsError> {
        let options = options_of(options.map(Into::into), "create", &["limits", "waitTimeoutMs"])?;
        web_gpu_available()?;
        let limits = match get_str(&options, "limits")?.as_deref() {
            None | Some("adapter") => None,
            Some("default") => Some(wgpu::Limits::default()),
            Some(other) => return Err(JsError::new(&format!("limits: 'adapter' or 'default', not '{other}'"))),
        };
        let timeout = field(&options, "waitTimeoutMs")?
            .map(|v| {
                v.as_f64()
                    .filter(|ms| ms.is_finite() && *ms >= 0.0)
                    .ok_or_else(|| JsError::new("options.waitTimeoutMs: a number of milliseconds ≥ 0"))
            })
            .transpose()?;
        let ctx = GpuContext::with_options_async(ContextOptions { limits, ..Default::default() }).await.map_err(js)?;
        if let Some(ms) = timeout {
            ctx.set_config(wgconv::EngineConfig {
                wait_timeout: std::time::Duration::from_secs_f64(ms / 1e3),
                ..ctx.config()
            });
        }
        Ok(Wgconv { ctx: Rc::new(ctx) })
    }

    /// The adapter's name as the implementation reports it (browsers may leave it empty).
    #[wasm_bindgen(getter)]
    pub fn adapter(&self) -> String {
        self.ctx.adapter_info().name.clone()
    }

    /// The engine's `GPUDevice`, for the page's own passes on its tensors.
    #[wasm_bindgen(getter)]
    pub fn device(&self) -> JsGpuDevice {
        let d: JsValue = self.ctx.device().as_webgpu().map_or(JsValue::UNDEFINED, |d| d.clone().into());
        d.unchecked_into()
    }

    /// Uploads `{ data, shape }` (f32, row-major) to a new tensor.
    pub fn tensor(&self, host: JsHostTensor) -> Result<Tensor, JsError> {
        let h = host_tensor(&host, "tensor")?;
        // (written by the queue straight from the array: not through the wasm heap)
        let inner = wgconv::Tensor::from_float32_array(&self.ctx, &h.shape, &h.data).map_err(js)?;
        Ok(self.wrap(inner))
    }

    /// Resolves when every op submitted so far is done; rejects with the first device error
    /// caught since the last read or `finish()`, or after the context's wait timeout.
    pub fn finish(&self) -> VoidPromise {
        let ctx = self.ctx.clone();
        let promise: Promise = wasm_bindgen_futures::future_to_promise(async move {
            ctx.wait_async().await.map_err(js)?;
            Ok(JsValue::UNDEFINED)
        });
        promise.unchecked_into()
    }

    /// `torch.nn.functional.conv2d(input, weight, bias, stride, padding, dilation, groups)`:
    /// input `[N, Cin, H, W]` (or `[Cin, H, W]`), weight `[Cout, Cin/groups, kh, kw]`, bias
    /// `[Cout]` or null; returns `[N, Cout, Ho, Wo]`.
    pub fn conv2d(
        &self,
        input: &Tensor,
        weight: &Tensor,
        bias: Option<JsOptionalTensor>,
        options: Option<JsConv2dOptions>,
    ) -> Result<Tensor, JsError> {
        let options =
            options_of(options.map(Into::into), "conv2d", &["stride", "padding", "dilation", "groups", "activation"])?;
        let params = Conv2dParams {
            stride: get_pair(&options, "stride", 1)?,
            padding: get_padding(&options, true)?,
            dilation: get_pair(&options, "dilation", 1)?,
            groups: get_u32(&options, "groups", 1)?,
            activation: get_activation(&options)?,
            ..Default::default()
        };
        let bias = optional_tensor(bias.map(Into::into), "bias")?;
        self.output(wgconv::conv2d(&self.ctx, &input.inner, &weight.inner, bias.as_ref(), &params))
    }

    /// `torch.nn.functional.conv_transpose2d(input, weight, bias, stride, padding,
    /// output_padding, groups, dilation)`: weight `[Cin, Cout/groups, kh, kw]`.
    pub fn conv_transpose2d(
        &self,
        input: &Tensor,
        weight: &Tensor,
        bias: Option<JsOptionalTensor>,
        options: Option<JsConvTranspose2dOptions>,
    ) -> Result<Tensor, JsError> {
        let allowed = ["stride", "padding", "output_padding", "dilation", "groups", "activation"];
        let options = options_of(options.map(Into::into), "conv_transpose2d", &allowed)?;
        let params = ConvTranspose2dParams {
            stride: get_pair(&options, "stride", 1)?,
            padding: get_padding(&options, false)?,
            output_padding: get_pair(&options, "output_padding", 0)?,
            dilation: get_pair(&options, "dilation", 1)?,
            groups: get_u32(&options, "groups", 1)?,
            activation: get_activation(&options)?,
            ..Default::default()
        };
        let bias = optional_tensor(bias.map(Into::into), "bias")?;
        self.output(wgconv::conv_transpose2d(&self.ctx, &input.inner, &weight.inner, bias.as_ref(), &params))
    }

    /// `torchvision.ops.deform_conv2d(input, offset, weight, bias, stride, padding, dilation,
    /// mask)`: offset `[N, 2·kh·kw·G, Ho, Wo]` ((y, x) pairs), mask `[N, kh·kw·G, Ho, Wo]` or
    /// null (v1).
    pub fn deform_conv2d(
        &self,
        input: &Tensor,
        offset: &Tensor,
        weight: &Tensor,
        bias: Option<JsOptionalTensor>,
        mask: Option<JsOptionalTensor>,
        options: Option<JsDeformConv2dOptions>,
    ) -> Result<Tensor, JsError> {
        let options = options_of(options.map(Into::into), "deform_conv2d", &["stride", "padding", "dilation"])?;
        let params = Conv2dParams {
            stride: get_pair(&options, "stride", 1)?,
            padding: get_padding(&options, false)?,
            dilation: get_pair(&options, "dilation", 1)?,
            ..Default::default()
        };
        let (mask, bias) =
            (optional_tensor(mask.map(Into::into), "mask")?, optional_tensor(bias.map(Into::into), "bias")?);
        let (x, w, off) = (&input.inner, &weight.inner, &offset.inner);
        self.output(wgconv::deform_conv2d(&self.ctx, x, w, off, mask.as_ref(), bias.as_ref(), &params))
    }

    /// `torch.nn.functional.max_pool2d(input, kernel_size, stride, padding, dilation,
    /// ceil_mode)`.
    pub fn max_pool2d(&self, input: &Tensor, options: JsPool2dOptions) -> Result<Tensor, JsError> {
        let allowed = ["kernel_size", "stride", "padding", "dilation", "ceil_mode"];
        let options = options_of(Some(options.into()), "max_pool2d", &allowed)?;
        self.output(wgconv::max_pool2d(&self.ctx, &input.inner, &pool_params(&options)?))
    }

    /// `torch.nn.functional.avg_pool2d(input, kernel_size, stride, padding, ceil_mode,
    /// count_include_pad=True, divisor_override)`.
    pub fn avg_pool2d(&self, input: &Tensor, options: JsPool2dOptions) -> Result<Tensor, JsError> {
        let allowed = ["kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override"];
        let options = options_of(Some(options.into()), "avg_pool2d", &allowed)?;
        self.output(wgconv::avg_pool2d(&self.ctx, &input.inner, &pool_params(&options)?))
    }

    /// wgconv's conformance run on this device (with the crate's `conformance` feature, on by
    /// default): every op's seeded cases (`cases_per_op` per
    /// op and algorithm, f16 where the adapter has it) against the f64 reference, then the
    /// probes (`probes`: `"none"` (default), `"quick"`: sums of 65535 to ~100k terms, NaN,
    /// ±∞, huge, tiny and subnormal values through every activation, f16's limits; `"full"`:
    /// sums of ~1M terms too), as `wgconv conformance` runs them natively (less its static
    /// shader check).
    #[cfg(feature = "conformance")]
    pub fn conformance(
        &self,
        cases_per_op: f64,
        seed: f64,
        probes: Option<JsProbeScale>,
    ) -> Result<ConformancePromise, JsError> {
        if !(cases_per_op >= 1.0 && cases_per_op.fract() == 0.0 && cases_per_op <= 1e6) {
            return Err(JsError::new(&format!("cases_per_op: a whole number from 1 to 1e6, not {cases_per_op}")));
        }
        if !(seed.is_finite() && seed >= 0.0 && seed.fract() == 0.0) {
            return Err(JsError::new(&format!("seed: a whole number ≥ 0, not {seed}")));
        }
        let probes: Option<String> = probes.map(|p| JsValue::from(p).as_string().unwrap_or_default());
        let probes = match probes.as_deref() {
            None | Some("none") => None,
            Some("quick") => Some(wgconv::probes::ProbeScale::Quick),
            Some("full") => Some(wgconv::probes::ProbeScale::Full),
            Some(other) => return Err(JsError::new(&format!("probes: 'none', 'quick' or 'full', not '{other}'"))),
        };
        let ctx = self.ctx.clone();
        let promise = wasm_bindgen_futures::future_to_promise(async move {
            let report = wgconv::conformance::run_cases_async(&ctx, seed as u64, cases_per_op as usize, probes).await;
            let ops = Array::new();
            for o in &report.ops {
                let failures: Array = o.failures.iter().map(|f| JsValue::from_str(f)).collect();
                ops.push(&object(&[
                    ("op", JsValue::from_str(&o.op)),
                    ("cases", (o.cases as f64).into()),
                    ("passed", (o.passed as f64).into()),
                    ("worst_rel_l2", o.worst_rel_l2.into()),
                    ("worst_max_abs", o.worst_max_abs.into()),
                    ("failures", failures.into()),
                ])?);
            }
            object(&[
                ("adapter", JsValue::from_str(&report.adapter)),
                ("ok", report.ok().into()),
                ("ops", ops.into()),
                ("table", JsValue::from_str(&report.table())),
            ])
        });
        Ok(promise.unchecked_into())
    }
}

impl Wgconv {
    fn wrap(&self, inner: wgconv::Tensor) -> Tensor {
        let id = NEXT_ID.with(|n| n.replace(n.get().wrapping_add(1).max(1)));
        LIVE.with(|l| l.borrow_mut().insert(id, inner.clone()));
        Tensor { ctx: self.ctx.clone(), inner, id }
    }

    fn output(&self, y: wgconv::Result<wgconv::Tensor>) -> Result<Tensor, JsError> {
        y.map(|t| self.wrap(t)).map_err(js)
    }
}

/// A tensor taken off a JS `{ data, shape }`.
struct Host {
    data: Float32Array,
    shape: Vec<usize>,
}

fn host_tensor(v: &JsValue, what: &str) -> Result<Host, JsError> {
    if !v.is_object() {
        return Err(JsError::new(&format!("{what}: an object {{ data: Float32Array, shape: number[] }}")));
    }
    let data = Reflect::get(v, &"data".into())
        .ok()
        .and_then(|d| d.dyn_into::<Float32Array>().ok())
        .ok_or_else(|| JsError::new(&format!("{what}.data: a Float32Array")))?;
    let shape = Reflect::get(v, &"shape".into()).map_err(|_| JsError::new(&format!("{what}.shape: missing")))?;
    let shape = dims(&shape).ok_or_else(|| JsError::new(&format!("{what}.shape: an array of whole numbers ≥ 0")))?;
    Ok(Host { data, shape })
}

/// Whole numbers ≥ 0 from a JS array.
fn dims(v: &JsValue) -> Option<Vec<usize>> {
    if !Array::is_array(v) {
        return None;
    }
    Array::from(v)
        .iter()
        .map(|d| d.as_f64().filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= u32::MAX as f64).map(|f| f as usize))
        .collect()
}

/// PyTorch's options wgconv does not take yet (issue #19), named as such rather than as typos.
const NOT_YET: [&str; 3] = ["padding_mode", "return_indices", "groups"];

/// The options object of `op` (undefined for none), every key checked against `allowed`: a
/// typo or an option wgconv does not take must not run with a default in silence.
fn options_of(options: Option<JsValue>, op: &str, allowed: &[&str]) -> Result<JsValue, JsError> {
    let Some(options) = options.filter(|v| !v.is_null() && !v.is_undefined()) else { return Ok(JsValue::UNDEFINED) };
    if !options.is_object() || Array::is_array(&options) {
        return Err(JsError::new(&format!("{op}: options must be an object, like {{ {}: … }}", allowed[0])));
    }
    for key in Object::keys(options.unchecked_ref::<Object>()).iter().filter_map(|k| k.as_string()) {
        if allowed.contains(&key.as_str()) {
            continue;
        }
        let list = allowed.join(", ");
        return Err(JsError::new(&if NOT_YET.contains(&key.as_str()) {
            format!("options.{key}: PyTorch's, but {op} here does not take it yet (it takes {list})")
        } else {
            format!("options.{key}: not an option of {op} (it takes {list})")
        }));
    }
    Ok(options)
}

/// A clear rejection where there is no WebGPU: wgpu's own check panics (no `Window` or worker
/// global) or names native back ends.
fn web_gpu_available() -> Result<(), JsError> {
    let global = js_sys::global();
    let has = |name: &str| Reflect::get(&global, &name.into()).is_ok_and(|v| !v.is_undefined());
    let gpu = Reflect::get(&global, &"navigator".into())
        .ok()
        .filter(|n| n.is_object())
        .and_then(|n| Reflect::get(&n, &"gpu".into()).ok())
        .is_some_and(|g| !g.is_undefined() && !g.is_null());
    if !gpu {
        return Err(JsError::new(
            "WebGPU is not available here: navigator.gpu is undefined (it needs a browser with WebGPU, on a secure \
             origin: https or localhost; in Node, preload a WebGPU implementation such as Dawn's `webgpu` package)",
        ));
    }
    if !has("Window") && !has("WorkerGlobalScope") {
        return Err(JsError::new(
            "WebGPU's entry point is here but this is neither a window nor a worker (wgpu looks for one): \
             define globalThis.Window, as conformance/webgpu/dawn-globals.mjs does for Node",
        ));
    }
    Ok(())
}

fn field(options: &JsValue, key: &str) -> Result<Option<JsValue>, JsError> {
    if options.is_null() || options.is_undefined() {
        return Ok(None);
    }
    let v = Reflect::get(options, &key.into()).map_err(|_| JsError::new(&format!("options.{key}: unreadable")))?;
    Ok((!v.is_undefined() && !v.is_null()).then_some(v))
}

fn get_str(options: &JsValue, key: &str) -> Result<Option<String>, JsError> {
    field(options, key)?
        .map(|v| v.as_string().ok_or_else(|| JsError::new(&format!("options.{key}: a string"))))
        .transpose()
}

fn get_u32(options: &JsValue, key: &str, default: u32) -> Result<u32, JsError> {
    match field(options, key)? {
        None => Ok(default),
        Some(v) => whole(&v).ok_or_else(|| JsError::new(&format!("options.{key}: a whole number ≥ 0"))),
    }
}

fn whole(v: &JsValue) -> Option<u32> {
    v.as_f64().filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= u32::MAX as f64).map(|f| f as u32)
}

/// `n` (both axes) or `[h, w]`, as PyTorch takes an int or a pair.
fn get_pair(options: &JsValue, key: &str, default: u32) -> Result<[u32; 2], JsError> {
    match field(options, key)? {
        None => Ok([default; 2]),
        Some(v) => pair(&v).ok_or_else(|| JsError::new(&format!("options.{key}: a whole number or [h, w]"))),
    }
}

fn pair(v: &JsValue) -> Option<[u32; 2]> {
    if let Some(n) = whole(v) {
        return Some([n, n]);
    }
    let d = dims(v)?;
    match d[..] {
        [h, w] => Some([u32::try_from(h).ok()?, u32::try_from(w).ok()?]),
        _ => None,
    }
}

/// `padding`: a number, `[ph, pw]`, or (conv2d) `'valid'` / `'same'`.
fn get_padding(options: &JsValue, strings: bool) -> Result<Padding, JsError> {
    let Some(v) = field(options, "padding")? else { return Ok(Padding::Symmetric([0, 0])) };
    match v.as_string().as_deref() {
        Some("valid") if strings => Ok(Padding::Valid),
        Some("same") if strings => Ok(Padding::Same),
        _ => pair(&v).map(Padding::Symmetric).ok_or_else(|| {
            JsError::new(if strings {
                "options.padding: a whole number, [ph, pw], 'valid' or 'same'"
            } else {
                "options.padding: a whole number or [ph, pw]"
            })
        }),
    }
}

fn get_activation(options: &JsValue) -> Result<Activation, JsError> {
    match get_str(options, "activation")? {
        None => Ok(Activation::None),
        Some(name) => Activation::parse(&name).ok_or_else(|| {
            JsError::new(&format!(
                "options.activation: '{name}' is not one of none, relu, relu6, leaky_relu[:α], sigmoid, tanh, gelu"
            ))
        }),
    }
}

fn pool_params(options: &JsValue) -> Result<Pool2dParams, JsError> {
    let kernel = field(options, "kernel_size")?
        .and_then(|v| pair(&v))
        .ok_or_else(|| JsError::new("options.kernel_size: a whole number or [kh, kw]"))?;
    let stride = field(options, "stride")?
        .map(|v| pair(&v).ok_or_else(|| JsError::new("options.stride: a whole number or [sh, sw]")))
        .transpose()?;
    let flag = |name: &str, default: bool| -> Result<bool, JsError> {
        match field(options, name)? {
            None => Ok(default),
            Some(v) => v.as_bool().ok_or_else(|| JsError::new(&format!("options.{name}: a boolean"))),
        }
    };
    let divisor_override = field(options, "divisor_override")?
        .map(|v| {
            v.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 1.0 && *f <= u32::MAX as f64)
                .map(|f| f as u32)
                .ok_or_else(|| JsError::new("options.divisor_override: a whole number ≥ 1"))
        })
        .transpose()?;
    Ok(Pool2dParams {
        kernel,
        stride,
        padding: get_pair(options, "padding", 0)?,
        dilation: get_pair(options, "dilation", 1)?,
        ceil_mode: flag("ceil_mode", false)?,
        count_include_pad: flag("count_include_pad", true)?,
        divisor_override,
        adaptive: None,
    })
}

fn object(entries: &[(&str, JsValue)]) -> Result<JsValue, JsValue> {
    let o = Object::new();
    for (k, v) in entries {
        Reflect::set(&o, &JsValue::from_str(k), v)?;
    }
    Ok(o.into())
}

fn js(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

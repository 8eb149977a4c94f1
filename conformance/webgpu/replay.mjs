// Runs wgconv's replay export (`wgconv conformance --export DIR`; format in src/replay.rs)
// on any WebGPU device: Dawn in Node (node.mjs) or a browser (index.html). Plain WebGPU and
// JavaScript, no dependencies, so that the same file runs in both.

export const FORMAT = 'wgconv-replay';
export const VERSION = 1;

const STORAGE_USAGE = 0x80 | 0x40 | 0x08 | 0x04; // STORAGE | UNIFORM | COPY_DST | COPY_SRC
const MAP_READ = 0x01;
const COPY_DST = 0x08;
const COMPUTE = 0x4;

/** Reads a replay folder through `load(path) -> Promise<ArrayBuffer>`. */
export async function openReplay(load) {
  const text = (b) => new TextDecoder().decode(b);
  const index = JSON.parse(text(await load('replay.json')));
  if (index.format !== FORMAT || index.version !== VERSION) {
    throw new Error(`not a ${FORMAT} v${VERSION} folder: ${index.format} v${index.version}`);
  }
  const json = async (path) => JSON.parse(text(await load(path)));
  return { index, load, json };
}

/**
 * Opens a device on `adapter` with the limits the replay was recorded under (its offsets
 * and binding sizes assume them) and shader-f16 where the adapter has it. Throws, naming
 * the limits, when the adapter offers less.
 */
export async function requestReplayDevice(adapter, replay) {
  const wanted = replay.index.limits || {};
  const short = Object.entries(wanted).filter(([k, v]) =>
    k.startsWith('min') ? adapter.limits[k] > v : adapter.limits[k] < v);
  if (short.length) {
    throw new Error(`the adapter's limits are below the replay's: ${short.map(([k, v]) => `${k} ${adapter.limits[k]} (needs ${v})`).join(', ')}`);
  }
  const requiredFeatures = adapter.features.has('shader-f16') ? ['shader-f16'] : [];
  return adapter.requestDevice({ requiredFeatures, requiredLimits: wanted });
}

/** The adapter's identity as the page or process reports it. */
export function adapterIdentity(adapter) {
  const i = adapter.info || {};
  return { vendor: i.vendor || '', architecture: i.architecture || '', device: i.device || '',
           description: i.description || '',
           // a compatibility-mode adapter lacks this feature (WebGPU's core level has it)
           featureLevel: adapter.features.has('core-features-and-limits') ? 'core' : 'compatibility' };
}

class Kernels {
  constructor(device, replay) {
    this.device = device;
    this.replay = replay;
    this.modules = new Map();
    this.layouts = new Map();
    this.pipelines = new Map();
  }

  async module(name) {
    if (!this.modules.has(name)) {
      const spec = this.replay.index.shaders[name];
      if (!spec) throw new Error(`unknown shader ${name}`);
      const code = new TextDecoder().decode(await this.replay.load(spec.file));
      const module = this.device.createShaderModule({ label: name, code });
      const info = await module.getCompilationInfo();
      const messages = info.messages
        .filter((m) => m.type === 'error' || m.type === 'warning')
        .map((m) => `${m.type} ${name}:${m.lineNum}:${m.linePos}: ${m.message}`);
      this.modules.set(name, { module, messages });
    }
    return this.modules.get(name);
  }

  layout(name) {
    if (!this.layouts.has(name)) {
      const spec = this.replay.index.shaders[name];
      const bgl = this.device.createBindGroupLayout({
        label: name,
        entries: spec.bindings.map((type, binding) => ({ binding, visibility: COMPUTE, buffer: { type } })),
      });
      const layout = this.device.createPipelineLayout({ label: name, bindGroupLayouts: [bgl] });
      this.layouts.set(name, { bgl, layout });
    }
    return this.layouts.get(name);
  }

  /** The compute pipeline of `name` with `constants`; throws with Tint's messages. */
  async pipeline(name, constants) {
    const key = name + JSON.stringify(constants);
    if (!this.pipelines.has(key)) {
      const { module, messages } = await this.module(name);
      if (messages.some((m) => m.startsWith('error'))) throw new Error(messages.join('\n'));
      const spec = this.replay.index.shaders[name];
      const pipeline = await this.device.createComputePipelineAsync({
        label: name,
        layout: this.layout(name).layout,
        compute: { module, entryPoint: spec.entry, constants },
      });
      this.pipelines.set(key, pipeline);
    }
    return this.pipelines.get(key);
  }
}

function f16ToF32(h) {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/**
 * wgconv's comparison (src/verify.rs): non-finite expected values must match in kind;
 * passes when rel-L2 ≤ tol.rel_l2 and max-abs ≤ tol.abs·(1 + max|expected|). Also returns
 * the first element outside the max-abs bound (or the worst one).
 */
export function compare(actual, expected, tol) {
  if (actual.length !== expected.length) {
    return { maxAbs: Infinity, relL2: Infinity, maxRef: 0, count: actual.length, bad: null };
  }
  let maxAbs = 0, diff2 = 0, ref2 = 0, maxRef = 0, worst = -1;
  const errs = new Float64Array(actual.length);
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i], r = expected[i];
    if (!Number.isFinite(r)) {
      const same = (Number.isNaN(r) && Number.isNaN(a)) || r === a;
      errs[i] = same ? 0 : Infinity;
      if (!same) { maxAbs = Infinity; diff2 = Infinity; if (worst < 0) worst = i; }
      continue;
    }
    let d = Math.abs(a - r);
    if (Number.isNaN(d)) d = Infinity;
    errs[i] = d;
    if (d > maxAbs) { maxAbs = d; worst = i; }
    diff2 += d * d;
    ref2 += r * r;
    maxRef = Math.max(maxRef, Math.abs(r));
  }
  const relL2 = Math.sqrt(diff2) / Math.max(Math.sqrt(ref2), 1e-30);
  const bound = tol.abs * (1 + maxRef);
  let first = errs.findIndex((e) => e > bound);
  if (first < 0) first = worst;
  const pass = relL2 <= tol.rel_l2 && maxAbs <= bound;
  const bad = pass || first < 0 ? null : { index: first, got: actual[first], want: expected[first] };
  return { maxAbs, relL2, maxRef, count: actual.length, pass, bad };
}

/** Runs one case; returns { op, case, status: 'pass' | 'fail' | 'skip', detail, stats }. */
export async function runCase(device, kernels, replay, path) {
  const c = await replay.json(path);
  const result = { op: c.op, case: c.case, path, status: 'fail', detail: '', stats: null };
  if (c.f16 && !device.features.has('shader-f16')) {
    return { ...result, status: 'skip', detail: 'no shader-f16 on this device' };
  }
  device.pushErrorScope('out-of-memory');
  device.pushErrorScope('validation');
  const buffers = [];
  try {
    for (const b of c.buffers) {
      const size = Math.max(4, Math.ceil(b.size / 4) * 4);
      const buffer = device.createBuffer({ size, usage: STORAGE_USAGE, mappedAtCreation: b.init !== null });
      if (b.init !== null) {
        new Uint8Array(buffer.getMappedRange()).set(new Uint8Array(await replay.load(b.init)));
        buffer.unmap();
      }
      buffers.push(buffer);
    }
    const encoder = device.createCommandEncoder({ label: c.op });
    let pass = null, passLabel = null;
    for (const d of c.dispatches) {
      const pipeline = await kernels.pipeline(d.shader, d.constants);
      if (pass === null || passLabel !== d.pass) {
        if (pass) pass.end();
        pass = encoder.beginComputePass({ label: d.pass });
        passLabel = d.pass;
      }
      const bindGroup = device.createBindGroup({
        layout: kernels.layout(d.shader).bgl,
        entries: d.bindings.map((b, binding) => ({
          binding, resource: { buffer: buffers[b.buffer], offset: b.offset, size: b.size },
        })),
      });
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bindGroup);
      pass.dispatchWorkgroups(...d.workgroups);
    }
    if (pass) pass.end();
    const staging = c.outputs.map((o) => {
      const bytes = o.count * (o.dtype === 'f16' ? 2 : 4);
      const s = device.createBuffer({ size: Math.max(4, Math.ceil(bytes / 4) * 4), usage: MAP_READ | COPY_DST });
      encoder.copyBufferToBuffer(buffers[o.buffer], 0, s, 0, s.size);
      return s;
    });
    device.queue.submit([encoder.finish()]);
    const errors = [await device.popErrorScope(), await device.popErrorScope()].filter(Boolean);
    if (errors.length) return { ...result, detail: errors.map((e) => e.message).join('; ') };
    let worst = null;
    for (let j = 0; j < c.outputs.length; j++) {
      const o = c.outputs[j];
      await staging[j].mapAsync(MAP_READ);
      const raw = staging[j].getMappedRange();
      const got = o.dtype === 'f16'
        ? Float64Array.from(new Uint16Array(raw, 0, o.count), f16ToF32)
        : Float64Array.from(new Float32Array(raw, 0, o.count));
      staging[j].unmap();
      staging[j].destroy();
      const want = new Float64Array(await replay.load(o.expected));
      const st = compare(got, want, c.tolerance);
      st.output = j;
      const score = (s) => Math.max(s.relL2 / c.tolerance.rel_l2, s.maxAbs / (c.tolerance.abs * (1 + s.maxRef)));
      if (worst === null || score(st) > score(worst) || (!st.pass && worst.pass)) worst = st;
    }
    result.stats = worst;
    if (worst.pass) return { ...result, status: 'pass' };
    const b = worst.bad;
    const where = b ? `output ${worst.output} element ${b.index}: got ${b.got}, expected ${b.want}; ` : '';
    return { ...result, detail: `${where}max-abs ${worst.maxAbs.toExponential(3)}, rel-L2 ${worst.relL2.toExponential(3)}` };
  } catch (e) {
    await device.popErrorScope().catch(() => {});
    await device.popErrorScope().catch(() => {});
    return { ...result, detail: `error: ${e.message || e}` };
  } finally {
    for (const b of buffers) b.destroy();
  }
}

/**
 * Runs every case (or the first `limit`); `onCase` sees each result as it arrives.
 * Returns { results, ops, table, passed, failed, skipped }.
 */
export async function runReplay(device, replay, { limit = Infinity, onCase = () => {} } = {}) {
  const kernels = new Kernels(device, replay);
  const results = [];
  for (const path of replay.index.cases.slice(0, limit)) {
    const c = await runCase(device, kernels, replay, path);
    results.push(c);
    onCase(c);
  }
  return summarize(results);
}

/** Compiles every shader × override set of `static.json` (WGSL module, compilation
 *  messages, compute pipeline with the constants): compile-only, e.g. on Dawn's null backend.
 *  Warnings count as failures. Returns { checked, failures: [{ shader, constants, why }] }. */
export async function checkStatic(device, replay, { onProgress = () => {} } = {}) {
  const kernels = new Kernels(device, replay);
  const sets = await replay.json(replay.index.static);
  const failures = [];
  for (let i = 0; i < sets.length; i++) {
    const { shader, constants } = sets[i];
    const { messages } = await kernels.module(shader);
    let why = messages.join(' | ');
    device.pushErrorScope('validation');
    try {
      await kernels.pipeline(shader, constants);
    } catch (e) {
      why = why || String(e.message || e);
    }
    const err = await device.popErrorScope();
    why = why || (err ? err.message : '');
    if (why) failures.push({ shader, constants, why });
    onProgress(i + 1, sets.length);
  }
  return { checked: sets.length, failures };
}

/** Per-op counts and worst errors, and the table `wgconv conformance` prints. */
export function summarize(results) {
  const ops = new Map();
  for (const r of results) {
    const o = ops.get(r.op) || { op: r.op, cases: 0, passed: 0, skipped: 0, relL2: 0, maxAbs: 0 };
    if (r.status === 'skip') o.skipped++;
    else {
      o.cases++;
      if (r.status === 'pass') o.passed++;
      if (r.stats) {
        o.relL2 = Math.max(o.relL2, r.stats.relL2);
        o.maxAbs = Math.max(o.maxAbs, r.stats.maxAbs);
      }
    }
    ops.set(r.op, o);
  }
  const pad = (s, n) => String(s).padStart(n);
  let table = `${'op'.padEnd(32)} ${pad('cases', 6)} ${pad('passed', 7)} ${pad('skipped', 8)} ${pad('worst rel-L2', 14)} ${pad('worst max-abs', 14)}\n`;
  for (const o of ops.values()) {
    table += `${o.op.padEnd(32)} ${pad(o.cases, 6)} ${pad(o.passed, 7)} ${pad(o.skipped, 8)} ${pad(o.relL2.toExponential(3), 14)} ${pad(o.maxAbs.toExponential(3), 14)}\n`;
  }
  for (const r of results.filter((r) => r.status === 'fail')) {
    table += `FAIL ${r.op}: ${r.case}: ${r.detail}\n`;
  }
  const passed = results.filter((r) => r.status === 'pass').length;
  const failed = results.filter((r) => r.status === 'fail').length;
  const skipped = results.filter((r) => r.status === 'skip').length;
  return { results, ops: [...ops.values()], table, passed, failed, skipped };
}

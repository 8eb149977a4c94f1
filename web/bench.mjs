// The suite of ../../shared/bench/shapes.md in one page: wgconv (this package) against
// TensorFlow.js's WebGPU backend on the same adapter, interleaved case by case and run by
// run. One run = the op on inputs already on the GPU plus reading its output back (`await
// y.read()` / `await y.data()`: what a page waits for), wall clock by performance.now().
// Each engine in its own layout (wgconv NCHW, TF.js NHWC) on the same values; both outputs
// checked against a float64 JavaScript reference at sampled points before timing.
export const SUITE = [
  // id,          op,                 N, Cin, H,   W,   Cout, k, s, p, d, groups
  ['r50_stem', 'conv2d', 1, 3, 224, 224, 64, 7, 2, 3, 1, 1],
  ['r50_c2', 'conv2d', 1, 64, 56, 56, 64, 3, 1, 1, 1, 1],
  ['r50_c3', 'conv2d', 1, 128, 28, 28, 128, 3, 1, 1, 1, 1],
  ['r50_c4', 'conv2d', 1, 256, 14, 14, 256, 3, 1, 1, 1, 1],
  ['r50_c5', 'conv2d', 1, 512, 7, 7, 512, 3, 1, 1, 1, 1],
  ['r50_pw', 'conv2d', 1, 256, 56, 56, 64, 1, 1, 0, 1, 1],
  ['r50_c3_b8', 'conv2d', 8, 128, 28, 28, 128, 3, 1, 1, 1, 1],
  ['mbv2_dw', 'conv2d', 1, 144, 56, 56, 144, 3, 1, 1, 1, 144],
  ['mbv2_dw_s2', 'conv2d', 1, 144, 56, 56, 144, 3, 2, 1, 1, 144],
  ['aspp_d6', 'conv2d', 1, 256, 28, 28, 256, 3, 1, 6, 6, 1],
  ['dcgan_up', 'conv_transpose2d', 1, 256, 14, 14, 128, 4, 2, 1, 1, 1],
  ['dcn_v2', 'deform_conv2d', 1, 64, 56, 56, 64, 3, 1, 1, 1, 1],
].map(([id, op, N, Cin, H, W, Cout, k, s, p, d, g]) => ({ id, op, N, Cin, H, W, Cout, k, s, p, d, g }));

const outSize = (c, x) => (c.op === 'conv_transpose2d'
  ? (x - 1) * c.s - 2 * c.p + c.d * (c.k - 1) + 1
  : Math.floor((x + 2 * c.p - c.d * (c.k - 1) - 1) / c.s) + 1);
const prod = (a) => a.reduce((x, y) => x * y, 1);
export const gflop = (c) => (c.op === 'conv_transpose2d'
  ? 2 * c.N * c.Cin * c.H * c.W * (c.Cout / c.g) * c.k * c.k
  : 2 * c.N * c.Cout * outSize(c, c.H) * outSize(c, c.W) * (c.Cin / c.g) * c.k * c.k) / 1e9;

function rng(seed) { // mulberry32
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const uniform = (n, r, scale = 1) => Float32Array.from({ length: n }, () => (r() * 2 - 1) * scale);

// NCHW values of one case: x [N, Cin, H, W], w (conv2d [Cout, Cin/g, k, k]; transposed
// [Cin, Cout, k, k]), deform's offset [N, 2k², Ho, Wo] (±2 px) and mask [N, k², Ho, Wo].
function inputs(c, seed) {
  const r = rng(seed ^ c.id.length * 0x9e3779b1);
  const [Ho, Wo] = [outSize(c, c.H), outSize(c, c.W)];
  const wShape = c.op === 'conv_transpose2d' ? [c.Cin, c.Cout, c.k, c.k] : [c.Cout, c.Cin / c.g, c.k, c.k];
  const v = { x: uniform(c.N * c.Cin * c.H * c.W, r), xShape: [c.N, c.Cin, c.H, c.W], w: uniform(prod(wShape), r), wShape, Ho, Wo };
  if (c.op === 'deform_conv2d') {
    v.offShape = [c.N, 2 * c.k * c.k, Ho, Wo];
    v.off = uniform(prod(v.offShape), r, 2);
    v.maskShape = [c.N, c.k * c.k, Ho, Wo];
    v.mask = Float32Array.from({ length: prod(v.maskShape) }, r);
  }
  return v;
}

// float64 reference of output (n, co, oh, ow) in NCHW, and Σ|terms| for the tolerance
function reference(c, v, n, co, oh, ow) {
  const { H, W, Cin, k, s, p, d } = c;
  const X = (ci, y, x) => (y < 0 || y >= H || x < 0 || x >= W ? 0 : v.x[((n * Cin + ci) * H + y) * W + x]);
  let acc = 0, abs = 0;
  const add = (t) => { acc += t; abs += Math.abs(t); };
  if (c.op === 'conv_transpose2d') {
    for (let ci = 0; ci < Cin; ci++) for (let kh = 0; kh < k; kh++) for (let kw = 0; kw < k; kw++) {
      const th = oh + p - kh * d, tw = ow + p - kw * d;
      if (th < 0 || tw < 0 || th % s || tw % s || th / s >= H || tw / s >= W) continue;
      add(X(ci, th / s, tw / s) * v.w[((ci * c.Cout + co) * k + kh) * k + kw]);
    }
    return [acc, abs];
  }
  const cpg = Cin / c.g, g = Math.floor(co / (c.Cout / c.g));
  for (let j = 0; j < cpg; j++) for (let kh = 0; kh < k; kh++) for (let kw = 0; kw < k; kw++) {
    const ci = g * cpg + j, wv = v.w[((co * cpg + j) * k + kh) * k + kw];
    let y = oh * s - p + kh * d, x = ow * s - p + kw * d;
    if (c.op !== 'deform_conv2d') { add(X(ci, y, x) * wv); continue; }
    const tap = kh * k + kw, at = (ch) => ((n * v.offShape[1] + ch) * v.Ho + oh) * v.Wo + ow;
    y += v.off[at(2 * tap)];
    x += v.off[at(2 * tap + 1)];
    const m = v.mask[((n * k * k + tap) * v.Ho + oh) * v.Wo + ow];
    if (y <= -1 || y >= H || x <= -1 || x >= W) { add(0); continue; }
    const y0 = Math.floor(y), x0 = Math.floor(x), ly = y - y0, lx = x - x0;
    const bil = (1 - ly) * (1 - lx) * X(ci, y0, x0) + (1 - ly) * lx * X(ci, y0, x0 + 1)
      + ly * (1 - lx) * X(ci, y0 + 1, x0) + ly * lx * X(ci, y0 + 1, x0 + 1);
    add(bil * m * wv);
  }
  return [acc, abs];
}

// Sampled outputs (corners, middle, random) of an NCHW result `at(n, co, oh, ow)` against
// the reference: |got − ref| ≤ 1e-4·Σ|terms| + 1e-5 at each point.
function check(c, v, at, r) {
  const pts = [];
  for (const oh of [0, v.Ho >> 1, v.Ho - 1]) for (const ow of [0, v.Wo >> 1, v.Wo - 1]) pts.push([0, 0, oh, ow]);
  for (let i = 0; i < 40; i++) pts.push([Math.floor(r() * c.N), Math.floor(r() * c.Cout), Math.floor(r() * v.Ho), Math.floor(r() * v.Wo)]);
  let worst = 0;
  for (const [n, co, oh, ow] of pts) {
    const [ref, abs] = reference(c, v, n, co, oh, ow);
    const e = Math.abs(at(n, co, oh, ow) - ref) / (1e-4 * abs + 1e-5);
    worst = Number.isNaN(e) ? Infinity : Math.max(worst, e);
  }
  return { ok: worst <= 1, detail: `${pts.length} points, worst err/tol ${worst.toExponential(1)}` };
}

const nchwToNhwc = (a, [N, C, H, W]) => {
  const o = new Float32Array(a.length);
  for (let n = 0; n < N; n++) for (let ch = 0; ch < C; ch++) for (let y = 0; y < H; y++) for (let x = 0; x < W; x++)
    o[((n * H + y) * W + x) * C + ch] = a[((n * C + ch) * H + y) * W + x];
  return o;
};
// [A, B, k, k] → [k, k, B, A] (TF.js's filter layouts: conv2d HWIO from OIHW takes (A, B) =
// (O, I) with B, A swapped to I, O; depthwise [k, k, C, 1]; conv2dTranspose [k, k, Cout, Cin]
// from PyTorch's [Cin, Cout, k, k])
function filterToTf(c, v) {
  const [A, B, k] = v.wShape;
  const o = new Float32Array(v.w.length);
  for (let a = 0; a < A; a++) for (let b = 0; b < B; b++) for (let y = 0; y < k; y++) for (let x = 0; x < k; x++) {
    o[((y * k + x) * B + b) * A + a] = v.w[((a * B + b) * k + y) * k + x];
  }
  // conv2d: [k, k, I, O] = [k, k, B, A] as written; depthwise: B = 1, so [k, k, 1, C] reads as [k, k, C, 1]
  const shape = c.g > 1 ? [k, k, A, 1] : [k, k, B, A];
  return { data: o, shape };
}

const median = (a) => { const b = [...a].sort((x, y) => x - y); const m = b.length >> 1; return b.length % 2 ? b[m] : (b[m - 1] + b[m]) / 2; };

// Runs the suite (or `ids`); `log(line)` gets the table; returns { rows, passed, failed }.
export async function runBench(wg, tf, log, { ids = null, seconds = 1.5, minRuns = 3, seed = 2026 } = {}) {
  const rows = [];
  let passed = 0, failed = 0;
  log(`| case | GFLOP | wgconv ms | TF.js ms | TF.js / wgconv | checks |`);
  log(`|---|---|---|---|---|---|`);
  for (const c of SUITE.filter((c) => !ids || ids.includes(c.id))) {
    const v = inputs(c, seed);
    const r = rng(seed + 7);
    // wgconv
    const x = wg.tensor({ data: v.x, shape: v.xShape }), w = wg.tensor({ data: v.w, shape: v.wShape });
    const opts = { stride: c.s, padding: c.p, dilation: c.d, groups: c.g };
    let run;
    if (c.op === 'conv2d') run = () => wg.conv2d(x, w, null, opts);
    else if (c.op === 'conv_transpose2d') run = () => wg.conv_transpose2d(x, w, null, { stride: c.s, padding: c.p });
    else {
      const off = wg.tensor({ data: v.off, shape: v.offShape }), mask = wg.tensor({ data: v.mask, shape: v.maskShape });
      run = () => wg.deform_conv2d(x, off, w, null, mask, { stride: c.s, padding: c.p, dilation: c.d });
    }
    const engines = [{ name: 'wgconv', times: [], run: async () => { const y = run(); const h = await y.read(); y.free(); return h; } }];
    // TF.js (NHWC), where it has the op
    let tfx = null, tfw = null;
    if (tf && c.op !== 'deform_conv2d') {
      tfx = tf.tensor(nchwToNhwc(v.x, v.xShape), [c.N, c.H, c.W, c.Cin]);
      const f = filterToTf(c, v);
      tfw = tf.tensor(f.data, f.shape);
      const pad = [[0, 0], [c.p, c.p], [c.p, c.p], [0, 0]];
      const op = c.op === 'conv_transpose2d'
        ? () => tf.conv2dTranspose(tfx, tfw, [c.N, v.Ho, v.Wo, c.Cout], [c.s, c.s], pad)
        : c.g > 1 ? () => tf.depthwiseConv2d(tfx, tfw, [c.s, c.s], pad, 'NHWC', [c.d, c.d])
          : () => tf.conv2d(tfx, tfw, [c.s, c.s], pad, 'NHWC', [c.d, c.d]);
      engines.push({ name: 'TF.js', times: [], run: async () => { const y = op(); const data = await y.data(); y.dispose(); return data; } });
    }
    const checks = [];
    for (const e of engines) {
      const out = await e.run(); // warm-up, checked
      const at = e.name === 'wgconv'
        ? (n, co, oh, ow) => out.data[((n * c.Cout + co) * v.Ho + oh) * v.Wo + ow]
        : (n, co, oh, ow) => out[((n * v.Ho + oh) * v.Wo + ow) * c.Cout + co];
      const chk = check(c, v, at, r);
      checks.push(`${e.name} ${chk.ok ? 'ok' : 'FAIL'} (${chk.detail})`);
      if (chk.ok) passed++; else failed++;
    }
    const start = performance.now();
    while (engines[0].times.length < minRuns || performance.now() - start < seconds * 1e3 * engines.length) {
      for (const e of engines) { // interleaved: A B A B ...
        const t0 = performance.now();
        await e.run();
        e.times.push(performance.now() - t0);
      }
      if (engines[0].times.length >= 200) break;
    }
    x.free(); w.free();
    tfx?.dispose(); tfw?.dispose();
    const [ms, tfms] = [median(engines[0].times), engines[1] ? median(engines[1].times) : null];
    rows.push({ id: c.id, gflop: gflop(c), wgconv_ms: ms, tfjs_ms: tfms, runs: engines[0].times.length, checks });
    log(`| ${c.id} | ${gflop(c).toFixed(3)} | ${ms.toFixed(2)} | ${tfms == null ? 'n/a' : tfms.toFixed(2)} | ${tfms == null ? 'n/a' : (tfms / ms).toFixed(2) + '×'} | ${checks.join('; ')} |`);
  }
  const ratios = rows.filter((r) => r.tfjs_ms).map((r) => r.tfjs_ms / r.wgconv_ms);
  if (ratios.length) log(`geometric mean TF.js / wgconv over ${ratios.length} cases: ${Math.exp(ratios.reduce((a, b) => a + Math.log(b), 0) / ratios.length).toFixed(2)}×`);
  return { rows, passed, failed };
}

// The JavaScript package's checks, run the same way in Node on Dawn (test.mjs) and in a
// browser page (test.html, driven by page.mjs): hand-worked values of each op, NaN through
// a fused relu, the page's own writes into a tensor's GPUBuffer, rejected calls, and
// wgconv's conformance run. `log(line)` receives one line per check; `memory`: the module's
// WebAssembly.Memory (what init() returns has it), for the check that data bypasses it.
export async function runChecks(Wgconv, log, { casesPerOp = 3, memory = null } = {}) {
  const wg = await Wgconv.create();
  log(`adapter: ${wg.adapter || 'an adapter the implementation does not name'}`);
  let passed = 0, failed = 0;
  async function check(name, body) {
    try {
      await body();
      passed++;
      log(`ok   ${name}`);
    } catch (e) {
      failed++;
      log(`FAIL ${name}: ${e?.message ?? e}`);
    }
  }
  const close = (g, w) => Object.is(g, w) || Math.abs(g - w) <= 1e-5 * Math.max(1, Math.abs(w));
  function same(got, want, what) {
    const g = Array.from(got);
    if (g.length !== want.length || g.some((v, i) => !close(v, want[i]))) throw new Error(`${what}: got [${g}], want [${want}]`);
  }
  async function rejects(call, pattern) {
    let message = null;
    try {
      await call();
    } catch (e) {
      message = String(e?.message ?? e);
    }
    if (message === null || !pattern.test(message)) throw new Error(`not rejected as ${pattern}: ${message}`);
  }
  const t = (shape, values) => wg.tensor({ data: Float32Array.from(values), shape });
  const nine = t([1, 1, 3, 3], [1, 2, 3, 4, 5, 6, 7, 8, 9]);
  const ones22 = t([1, 1, 2, 2], [1, 1, 1, 1]);

  await check('conv2d: 2x2 ones over 1..9 plus bias, the bias used twice', async () => {
    const bias = t([1], [0.5]);
    for (let i = 0; i < 2; i++) {
      const y = await wg.conv2d(nine, ones22, bias, { stride: 1, padding: 0 }).read();
      same(y.shape, [1, 1, 2, 2], 'shape');
      same(y.data, [12.5, 16.5, 24.5, 28.5], 'data');
    }
  });
  await check("conv2d: padding 'same', stride [1, 1], unbatched input", async () => {
    const identity = t([1, 1, 3, 3], [0, 0, 0, 0, 1, 0, 0, 0, 0]);
    const y = await wg.conv2d(t([1, 3, 3], [1, 2, 3, 4, 5, 6, 7, 8, 9]), identity, null, { padding: 'same', stride: [1, 1] }).read();
    same(y.shape, [1, 3, 3], 'shape');
    same(y.data, [1, 2, 3, 4, 5, 6, 7, 8, 9], 'data');
  });
  await check('conv2d: NaN passes through a fused relu (as torch.relu)', async () => {
    const y = await wg.conv2d(t([1, 1, 1, 2], [NaN, -1]), t([1, 1, 1, 1], [1]), undefined, { activation: 'relu' }).read();
    same(y.data, [NaN, 0], 'data');
  });
  await check('ops chain on the GPU: conv2d then max_pool2d, one read', async () => {
    const y = await wg.max_pool2d(wg.conv2d(nine, ones22, null, {}), { kernel_size: 2 }).read();
    same(y.shape, [1, 1, 1, 1], 'shape');
    same(y.data, [28], 'data');
  });
  await check('conv_transpose2d: stride 2 spreads each value over a 2x2 block', async () => {
    const y = await wg.conv_transpose2d(t([1, 1, 2, 2], [1, 2, 3, 4]), ones22, null, { stride: 2 }).read();
    same(y.shape, [1, 1, 4, 4], 'shape');
    same(y.data, [1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4], 'data');
  });
  await check('deform_conv2d: zero offsets and a mask of ones give conv2d', async () => {
    const offset = t([1, 8, 2, 2], new Array(32).fill(0));
    const mask = t([1, 4, 2, 2], new Array(16).fill(1));
    const y = await wg.deform_conv2d(nine, offset, ones22, null, mask, {}).read();
    same(y.data, [12, 16, 24, 28], 'data');
  });
  await check('max_pool2d and avg_pool2d: kernel 2, stride 1', async () => {
    same((await wg.max_pool2d(nine, { kernel_size: 2, stride: 1 }).read()).data, [5, 6, 8, 9], 'max');
    same((await wg.avg_pool2d(nine, { kernel_size: 2, stride: 1 }).read()).data, [3, 4, 6, 7], 'avg');
  });
  await check("the page writes a tensor's GPUBuffer itself; the next op reads it", async () => {
    const x = t([1, 1, 2, 2], [0, 0, 0, 0]);
    if (!(x.buffer && typeof x.buffer.mapAsync === 'function')) throw new Error(`buffer is not a GPUBuffer: ${x.buffer}`);
    wg.device.queue.writeBuffer(x.buffer, x.byteOffset, new Float32Array([1, 2, 3, 4]));
    same((await wg.conv2d(x, ones22, null, {}).read()).data, [10], 'data');
  });
  if (memory) {
    await check('a 64 MiB tensor goes up and comes back without passing through the wasm heap', async () => {
      const n = 16 << 20;
      const data = new Float32Array(n);
      for (let i = 0; i < n; i += 4099) data[i] = i;
      const before = memory.buffer.byteLength;
      const big = wg.tensor({ data, shape: [1, 1, 4096, 4096] });
      const back = await wg.max_pool2d(big, { kernel_size: 1 }).read();
      const grown = memory.buffer.byteLength - before;
      if (back.data.length !== n || back.data[4099 * 7] !== 4099 * 7) throw new Error('values differ');
      if (grown > 8 << 20) throw new Error(`the wasm heap grew by ${(grown / 2 ** 20).toFixed(1)} MiB`);
      big.free();
    });
  }
  await check('a weight with the wrong channel count throws a channel mismatch', () =>
    rejects(() => wg.conv2d(nine, t([1, 2, 2, 2], new Array(8).fill(1)), null, {}), /channel/i));
  await check('bad options throw, not guessed', () =>
    rejects(() => wg.conv2d(nine, ones22, null, { stride: [1, 2, 3] }), /options\.stride/));
  await check('avg_pool2d: ceil_mode keeps the last, partial windows; divisor_override divides', async () => {
    const y = await wg.avg_pool2d(nine, { kernel_size: 2, ceil_mode: true }).read();
    same(y.shape, [1, 1, 2, 2], 'shape');
    same(y.data, [3, 4.5, 7.5, 9], 'data');
    const z = await wg.avg_pool2d(nine, { kernel_size: 2, ceil_mode: true, divisor_override: 4 }).read();
    same(z.data, [3, 2.25, 3.75, 2.25], 'data');
  });
  await check("an option wgconv does not take throws, typo or PyTorch's (return_indices)", async () => {
    await rejects(() => wg.conv2d(nine, ones22, null, { paddng: 1 }), /options\.paddng: not an option of conv2d/);
    await rejects(() => wg.max_pool2d(nine, { kernel_size: 2, return_indices: true }), /options\.return_indices: PyTorch's/);
    await rejects(() => wg.avg_pool2d(nine, { kernel_size: 2, dilation: 2 }), /options\.dilation: not an option of avg_pool2d/);
    await rejects(() => wg.conformance(0, 1), /cases_per_op/);
  });
  await check('a bias that is not a tensor throws', () =>
    rejects(() => wg.conv2d(nine, ones22, { data: new Float32Array(1), shape: [1] }, {}), /bias/));
  await check('conformance: every op and probe matches the f64 reference', async () => {
    const r = await wg.conformance(casesPerOp, 2026, 'quick');
    const cases = r.ops.reduce((n, o) => n + o.cases, 0);
    if (!r.ok || cases === 0) throw new Error(`${cases} cases\n${r.table}`);
    log(`     ${r.ops.length} ops, ${cases} cases passed`);
  });
  return { passed, failed };
}

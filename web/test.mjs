// The JavaScript package (web/pkg, `bash build.sh`) on Dawn in Node, as a page would use it:
//   node --import ../conformance/webgpu/dawn-globals.mjs test.mjs     (npm test)
// Hand-worked values of each op, NaN through a fused relu, a rejected call, and wgconv's
// conformance run. Prints `js package: N passed, M failed`; exit 1 on any failure.
import { readFile } from 'node:fs/promises';
import init, { Wgconv } from './pkg/wgconv_web.js';

await init({ module_or_path: await readFile(new URL('./pkg/wgconv_web_bg.wasm', import.meta.url)) });
const wg = await Wgconv.create();
console.log(`adapter: ${wg.adapter}`);

let passed = 0, failed = 0;
async function check(name, body) {
  try {
    await body();
    passed++;
    console.log(`ok   ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${e?.message ?? e}`);
  }
}
function same(got, want, what) {
  const g = Array.from(got);
  if (g.length !== want.length || g.some((v, i) => !(Object.is(v, want[i]) || Math.abs(v - want[i]) <= 1e-5 * Math.max(1, Math.abs(want[i]))))) {
    throw new Error(`${what}: got [${g}], want [${want}]`);
  }
}
const t = (shape, values) => ({ data: Float32Array.from(values), shape });
const nine = t([1, 1, 3, 3], [1, 2, 3, 4, 5, 6, 7, 8, 9]);

await check('conv2d: 2x2 ones over 1..9 plus bias', async () => {
  const y = await wg.conv2d(nine, t([1, 1, 2, 2], [1, 1, 1, 1]), t([1], [0.5]), { stride: 1, padding: 0 });
  same(y.shape, [1, 1, 2, 2], 'shape');
  same(y.data, [12.5, 16.5, 24.5, 28.5], 'data');
});
await check("conv2d: padding 'same', stride [1, 1], unbatched input", async () => {
  const y = await wg.conv2d(t([1, 3, 3], nine.data), t([1, 1, 3, 3], [0, 0, 0, 0, 1, 0, 0, 0, 0]), null, { padding: 'same', stride: [1, 1] });
  same(y.shape, [1, 3, 3], 'shape');
  same(y.data, nine.data, 'data');
});
await check('conv2d: NaN passes through a fused relu (as torch.relu)', async () => {
  const y = await wg.conv2d(t([1, 1, 1, 2], [NaN, -1]), t([1, 1, 1, 1], [1]), null, { activation: 'relu' });
  same(y.data, [NaN, 0], 'data');
});
await check('conv_transpose2d: stride 2 spreads each value over a 2x2 block', async () => {
  const y = await wg.conv_transpose2d(t([1, 1, 2, 2], [1, 2, 3, 4]), t([1, 1, 2, 2], [1, 1, 1, 1]), null, { stride: 2 });
  same(y.shape, [1, 1, 4, 4], 'shape');
  same(y.data, [1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4], 'data');
});
await check('max_pool2d and avg_pool2d: kernel 2, stride 1', async () => {
  same((await wg.max_pool2d(nine, { kernel_size: 2, stride: 1 })).data, [5, 6, 8, 9], 'max');
  same((await wg.avg_pool2d(nine, { kernel_size: 2, stride: 1 })).data, [3, 4, 6, 7], 'avg');
});
await check('a weight with the wrong channel count is rejected with a message', async () => {
  let message = null;
  try {
    await wg.conv2d(nine, t([1, 2, 2, 2], new Array(8).fill(1)), null, {});
  } catch (e) {
    message = String(e?.message ?? e);
  }
  if (!message || !/channel|Cin|groups/i.test(message)) throw new Error(`not rejected as a channel mismatch: ${message}`);
});
await check('bad options are rejected, not guessed', async () => {
  let message = null;
  try {
    await wg.conv2d(nine, t([1, 1, 2, 2], [1, 1, 1, 1]), null, { stride: [1, 2, 3] });
  } catch (e) {
    message = String(e?.message ?? e);
  }
  if (!message || !message.includes('options.stride')) throw new Error(`not rejected: ${message}`);
});
await check('conformance: every op matches the f64 reference', async () => {
  const r = await wg.conformance(3, 2026);
  const cases = r.ops.reduce((n, o) => n + o.cases, 0);
  if (!r.ok || cases === 0) throw new Error(`${cases} cases\n${r.table}`);
  console.log(`     ${r.ops.length} ops, ${cases} cases passed`);
});

console.log(`js package: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);

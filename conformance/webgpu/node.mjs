// Runs a wgconv replay folder on Dawn, Chrome's WebGPU implementation, in Node (the `webgpu`
// package, pinned in package-lock.json).
//
//   node node.mjs DIR [--backend vulkan|null|...] [--static] [--limit N] [--json FILE]
//
// Without --static: runs the cases and prints the per-op table, then `dawn: N passed, M failed`.
// With --static: compiles every shader × override set (Tint), no dispatches; on
// `--backend null` no driver is needed. Exit status 1 on any failure, 2 on bad arguments.
// The Vulkan driver is the loader's choice: VK_ICD_FILENAMES selects one (tools/fetch_mesa25.sh).
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { create, globals } from 'webgpu';
import { openReplay, runReplay, checkStatic, adapterIdentity, requestReplayDevice } from './replay.mjs';

Object.assign(globalThis, globals);

function usage(msg) {
  console.error(`node.mjs: ${msg}\nusage: node node.mjs DIR [--backend vulkan|null] [--static] [--limit N] [--json FILE]`);
  process.exit(2);
}

const args = process.argv.slice(2);
const opts = { backend: 'vulkan', static: false, limit: Infinity, json: null, dir: null };
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === '--backend') opts.backend = args[++i];
  else if (a === '--static') opts.static = true;
  else if (a === '--limit') opts.limit = Number(args[++i]);
  else if (a === '--json') opts.json = args[++i];
  else if (a.startsWith('--')) usage(`unknown option ${a}`);
  else opts.dir = a;
}
if (!opts.dir) usage('no replay folder');
if (!(opts.limit > 0)) usage('--limit takes a positive number');

const replay = await openReplay(async (p) => {
  const b = await readFile(path.join(opts.dir, p));
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);
});
const gpu = create([`backend=${opts.backend}`]);
const adapter = await gpu.requestAdapter();
if (!adapter) {
  console.error(`node.mjs: Dawn found no ${opts.backend} adapter`);
  process.exit(1);
}
const device = await requestReplayDevice(adapter, replay);
device.lost.then((info) => { if (info.reason !== 'destroyed') console.error(`device lost: ${info.message}`); });
const id = adapterIdentity(adapter);
const name = `dawn ${opts.backend}`;
console.log(`adapter: ${id.description || id.device} (Dawn, ${opts.backend}; vendor ${id.vendor}, ${id.architecture})`);
console.log(`replay: ${opts.dir} (recorded on ${replay.index.adapter.name}, ${replay.index.adapter.driver_info}; ${replay.index.generator})`);

let report;
if (opts.static) {
  const st = await checkStatic(device, replay);
  // one line per distinct message, with how many override sets it failed
  const byWhy = new Map();
  for (const f of st.failures) {
    const k = `${f.shader}: ${f.why}`;
    byWhy.set(k, (byWhy.get(k) || []).concat([JSON.stringify(f.constants)]));
  }
  for (const [k, sets] of byWhy) console.log(`FAIL ${k} (${sets.length} override sets, e.g. ${sets[0]})`);
  console.log(`tint (${name}, static): ${st.checked - st.failures.length} passed, ${st.failures.length} failed`);
  report = { adapter: id, backend: opts.backend, static: st };
  process.exitCode = st.failures.length ? 1 : 0;
} else {
  const r = await runReplay(device, replay, { limit: opts.limit });
  process.stdout.write(r.table);
  const skipped = r.skipped ? `, ${r.skipped} skipped` : '';
  console.log(`${name}: ${r.passed} passed, ${r.failed} failed${skipped}`);
  report = { adapter: id, backend: opts.backend, ops: r.ops, results: r.results };
  process.exitCode = r.failed || r.passed === 0 ? 1 : 0;
}
if (opts.json) await writeFile(opts.json, JSON.stringify(report, null, 1));
device.destroy();
// Dawn's Node binding keeps the process alive after the device is gone
process.exit(process.exitCode);

// The browser side of the replay runner: the same replay.mjs as in Node, on navigator.gpu.
// Query: replay=URL (the exported folder, ending in /), limit=N, static=1 (compile only),
// compat=1 (ask for WebGPU's compatibility mode), report=URL (POST the result there as JSON).
import { openReplay, runReplay, checkStatic, adapterIdentity, requestReplayDevice } from './replay.mjs';

const out = document.getElementById('out');
const q = new URLSearchParams(location.search);
const log = (line) => { out.textContent += `${line}\n`; };

async function main() {
  out.textContent = '';
  const base = q.get('replay') || 'replay/';
  const replay = await openReplay(async (p) => {
    const r = await fetch(new URL(p, new URL(base, location.href)));
    if (!r.ok) throw new Error(`${p}: HTTP ${r.status}`);
    return r.arrayBuffer();
  });
  if (!navigator.gpu) throw new Error('this browser has no WebGPU (navigator.gpu is undefined)');
  const compat = q.get('compat') === '1';
  const adapter = await navigator.gpu.requestAdapter(compat ? { featureLevel: 'compatibility' } : {});
  if (!adapter) throw new Error('no WebGPU adapter');
  const device = await requestReplayDevice(adapter, replay);
  const id = adapterIdentity(adapter);
  log(`adapter: ${id.description || id.device || id.architecture} (vendor ${id.vendor}, ${id.architecture}; ${navigator.userAgent})`);
  log(`replay: ${base} (recorded on ${replay.index.adapter.name}, ${replay.index.adapter.driver_info})`);
  if (q.get('static') === '1') {
    const st = await checkStatic(device, replay, { onProgress: (i, n) => { if (i % 200 === 0) log(`${i}/${n}`); } });
    for (const f of st.failures) log(`FAIL ${f.shader} ${JSON.stringify(f.constants)}: ${f.why}`);
    return { adapter: id, static: st, passed: st.checked - st.failures.length, failed: st.failures.length };
  }
  const limit = Number(q.get('limit') || Infinity);
  const r = await runReplay(device, replay, { limit });
  log(r.table);
  return { adapter: id, ops: r.ops, results: r.results, passed: r.passed, failed: r.failed, skipped: r.skipped };
}

async function report(body) {
  const to = q.get('report');
  if (to) await fetch(to, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
}

main().then(
  async (r) => { log(`${r.passed} passed, ${r.failed} failed`); await report(r); },
  async (e) => { log(`error: ${e.message || e}`); await report({ error: String(e.message || e), passed: 0, failed: 0 }); },
);

// Runs a wgconv replay folder in headless Chromium: serves this folder and the replay on
// 127.0.0.1, opens index.html, waits for the page to POST its result, prints it.
//
//   node browser.mjs DIR [--chromium PATH] [--limit N] [--static] [--adapter swiftshader|angle-vulkan]
//                        [--timeout SECONDS] [--serve]
//
// --adapter swiftshader (default): Chromium's bundled software Vulkan, full WebGPU.
// --adapter angle-vulkan: WebGPU's compatibility mode on the system Vulkan driver through ANGLE.
// --serve: only serve and print the URL (open it in any browser yourself).
// Prints the page's table and `chromium: N passed, M failed`; exit 1 on any failure.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve, inside, inChromium } from './headless.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const opts = { chromium: '/usr/bin/chromium', limit: null, static: false, adapter: 'swiftshader', timeout: 900, serve: false, dir: null };
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === '--chromium') opts.chromium = args[++i];
  else if (a === '--limit') opts.limit = Number(args[++i]);
  else if (a === '--static') opts.static = true;
  else if (a === '--adapter') opts.adapter = args[++i];
  else if (a === '--timeout') opts.timeout = Number(args[++i]);
  else if (a === '--serve') opts.serve = true;
  else if (a.startsWith('--')) { console.error(`browser.mjs: unknown option ${a}`); process.exit(2); }
  else opts.dir = path.resolve(a);
}
if (!opts.dir) { console.error('browser.mjs: no replay folder'); process.exit(2); }

let resolveReport;
const reported = new Promise((r) => { resolveReport = r; });
// /replay/... from the replay folder, the rest from this folder; no path leaves either
const server = await serve(
  (p) => (p.startsWith('/replay/') ? inside(opts.dir, p.slice('/replay/'.length)) : inside(here, p.slice(1) || 'index.html')),
  (p, body) => { if (p === '/report') resolveReport(JSON.parse(body)); },
);
const port = server.port;
const params = new URLSearchParams({ replay: '/replay/', report: '/report' });
if (opts.limit) params.set('limit', String(opts.limit));
if (opts.static) params.set('static', '1');
if (opts.adapter === 'angle-vulkan') params.set('compat', '1');
const url = `http://127.0.0.1:${port}/index.html?${params}`;
if (opts.serve) {
  console.log(`serving: open ${url}`);
} else {
  const r = await inChromium({
    chromium: opts.chromium,
    url,
    timeout: opts.timeout,
    reported,
    adapterFlags: opts.adapter === 'angle-vulkan'
      ? ['--use-angle=vulkan', '--use-webgpu-adapter=opengles']
      : ['--use-webgpu-adapter=swiftshader'],
  });
  server.close();
  const name = `chromium ${opts.adapter}${opts.static ? ' (static)' : ''}`;
  if (r.error) {
    console.log(`error: ${r.error}`);
    console.log(`${name}: 0 passed, 1 failed (the page did not run)`);
    process.exit(1);
  }
  const id = r.adapter;
  console.log(`adapter: ${id.description || id.device || id.architecture} (vendor ${id.vendor}, ${id.architecture}; feature level ${id.featureLevel})`);
  if (r.static) {
    for (const f of r.static.failures) console.log(`FAIL ${f.shader} ${JSON.stringify(f.constants)}: ${f.why}`);
  } else {
    for (const o of r.ops) console.log(`${o.op.padEnd(32)} ${String(o.cases).padStart(6)} ${String(o.passed).padStart(7)} ${String(o.skipped).padStart(8)}`);
    for (const c of r.results.filter((c) => c.status === 'fail')) console.log(`FAIL ${c.op}: ${c.case}: ${c.detail}`);
  }
  const skipped = r.skipped ? `, ${r.skipped} skipped` : '';
  console.log(`${name}: ${r.passed} passed, ${r.failed} failed${skipped}`);
  process.exit(r.failed || !r.passed ? 1 : 0);
}

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
import http from 'node:http';
import { spawn } from 'node:child_process';
import { readFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

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

const types = { '.html': 'text/html', '.mjs': 'text/javascript', '.json': 'application/json', '.wgsl': 'text/plain' };
let resolveReport;
const reported = new Promise((r) => { resolveReport = r; });
const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://x');
  if (req.method === 'POST' && url.pathname === '/report') {
    let body = '';
    for await (const chunk of req) body += chunk;
    res.end('ok');
    resolveReport(JSON.parse(body));
    return;
  }
  // /replay/... from the replay folder, the rest from this folder; no path leaves either
  const [root, rel] = url.pathname.startsWith('/replay/')
    ? [opts.dir, url.pathname.slice('/replay/'.length)]
    : [here, url.pathname.slice(1) || 'index.html'];
  const file = path.resolve(root, decodeURIComponent(rel));
  if (!file.startsWith(root + path.sep) || file.includes(`${path.sep}node_modules${path.sep}`)) {
    res.writeHead(403).end();
    return;
  }
  try {
    const body = await readFile(file);
    res.writeHead(200, { 'content-type': types[path.extname(file)] || 'application/octet-stream' }).end(body);
  } catch {
    res.writeHead(404).end();
  }
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const port = server.address().port;
const params = new URLSearchParams({ replay: '/replay/', report: '/report' });
if (opts.limit) params.set('limit', String(opts.limit));
if (opts.static) params.set('static', '1');
if (opts.adapter === 'angle-vulkan') params.set('compat', '1');
const url = `http://127.0.0.1:${port}/index.html?${params}`;
if (opts.serve) {
  console.log(`serving: open ${url}`);
} else {
  const profile = await mkdtemp(path.join(tmpdir(), 'wgconv-chromium-'));
  const flags = [
    '--headless=new', '--no-sandbox', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--disable-quic', `--user-data-dir=${profile}`,
    // developer features: the adapter's real name and driver in adapter.info
    '--enable-unsafe-webgpu', '--enable-webgpu-developer-features', '--enable-features=Vulkan',
    ...(opts.adapter === 'angle-vulkan'
      ? ['--use-angle=vulkan', '--use-webgpu-adapter=opengles']
      : ['--use-webgpu-adapter=swiftshader']),
    url,
  ];
  const child = spawn(opts.chromium, flags, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr = (stderr + d).slice(-4000); });
  const timer = setTimeout(() => resolveReport({ error: `no result after ${opts.timeout} s; chromium said:\n${stderr}` }), opts.timeout * 1000);
  child.on('exit', (code) => resolveReport({ error: `chromium exited (${code}) before the page reported:\n${stderr}` }));
  const r = await reported;
  clearTimeout(timer);
  child.removeAllListeners('exit');
  const exited = new Promise((res) => child.once('exit', res));
  child.kill('SIGTERM');
  await Promise.race([exited, new Promise((res) => setTimeout(res, 5000))]);
  child.kill('SIGKILL');
  server.close();
  // Chromium's helper processes may still be writing the profile for a moment
  await rm(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 }).catch(() => {});
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

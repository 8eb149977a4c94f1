// Opens one of the package's pages in headless Chromium and prints what it reports:
//   node page.mjs PAGE [--chromium PATH] [--timeout SECONDS] [--screenshot OUT.png]
//                      [--query K=V]... [--serve]
// PAGE is a path below the repository root (web/test.html, web/bench.html,
// examples/web/index.html). The repository's web/ and examples/web/ folders are served on
// 127.0.0.1 (web/node_modules too: the bench page loads TF.js from it); the page posts each
// line to /log and `{ passed, failed }` (or `{ error }`) to /report. WebGPU runs on
// Chromium's SwiftShader. --screenshot saves the page as Chromium draws it once it has
// reported (through the DevTools protocol; Node 20 needs --experimental-websocket).
// --serve: only serve and print the URL. Exit 1 when the page reports a failure or none.
import http from 'node:http';
import { spawn } from 'node:child_process';
import { readFile, writeFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const opts = { chromium: '/usr/bin/chromium', timeout: 900, screenshot: null, serve: false, page: null, query: [] };
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === '--chromium') opts.chromium = args[++i];
  else if (a === '--timeout') opts.timeout = Number(args[++i]);
  else if (a === '--screenshot') opts.screenshot = path.resolve(args[++i]);
  else if (a === '--query') opts.query.push(args[++i].split('=', 2));
  else if (a === '--serve') opts.serve = true;
  else if (a.startsWith('--')) { console.error(`page.mjs: unknown option ${a}`); process.exit(2); }
  else opts.page = a;
}
if (!opts.page) { console.error('page.mjs: no page'); process.exit(2); }
if (opts.screenshot && typeof WebSocket === 'undefined') {
  console.error('page.mjs: --screenshot needs a WebSocket (node --experimental-websocket on Node 20)');
  process.exit(2);
}

const types = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.json': 'application/json',
  '.wasm': 'application/wasm', '.png': 'image/png', '.jpg': 'image/jpeg', '.css': 'text/css' };
const served = ['web', 'examples/web'].map((d) => path.join(repo, d) + path.sep);
let resolveReport;
const reported = new Promise((r) => { resolveReport = r; });
const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://x');
  if (req.method === 'POST') {
    let body = '';
    for await (const chunk of req) body += chunk;
    res.end('ok');
    if (url.pathname === '/log') console.log(body);
    else if (url.pathname === '/report') resolveReport(JSON.parse(body));
    return;
  }
  const file = path.resolve(repo, decodeURIComponent(url.pathname.slice(1)));
  if (!served.some((d) => file.startsWith(d))) {
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
const query = new URLSearchParams([['report', '1'], ...opts.query]);
const url = `http://127.0.0.1:${server.address().port}/${opts.page}?${query}`;
if (opts.serve) {
  console.log(`serving: open ${url}`);
} else {
  const profile = await mkdtemp(path.join(tmpdir(), 'wgconv-page-'));
  const flags = [
    '--headless=new', '--no-sandbox', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', `--user-data-dir=${profile}`,
    '--enable-unsafe-webgpu', '--enable-webgpu-developer-features', '--use-webgpu-adapter=swiftshader',
    '--window-size=1280,800', ...(opts.screenshot ? ['--remote-debugging-port=0'] : []), url,
  ];
  const child = spawn(opts.chromium, flags, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  let devtools = null;
  child.stderr.on('data', (d) => {
    stderr = (stderr + d).slice(-8000);
    devtools ??= /DevTools listening on (ws:\/\/\S+)/.exec(stderr)?.[1] ?? null;
  });
  const timer = setTimeout(() => resolveReport({ error: `no report after ${opts.timeout} s; chromium said:\n${stderr}` }), opts.timeout * 1000);
  child.on('exit', (code) => resolveReport({ error: `chromium exited (${code}) before the page reported:\n${stderr}` }));
  const r = await reported;
  clearTimeout(timer);
  if (opts.screenshot && !r.error) {
    try {
      await screenshot(devtools, opts.screenshot);
      console.log(`screenshot: ${opts.screenshot}`);
    } catch (e) {
      r.error = `screenshot: ${e.message}`;
    }
  }
  child.removeAllListeners('exit');
  const exited = new Promise((res) => child.once('exit', res));
  child.kill('SIGTERM');
  await Promise.race([exited, new Promise((res) => setTimeout(res, 5000))]);
  child.kill('SIGKILL');
  server.close();
  await rm(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 }).catch(() => {});
  if (r.error) {
    console.log(`error: ${r.error}`);
    process.exit(1);
  }
  process.exit(r.failed || !r.passed ? 1 : 0);
}

// Page.captureScreenshot of the page's target through the DevTools protocol.
async function screenshot(browserWs, out) {
  if (!browserWs) throw new Error('Chromium printed no DevTools address');
  const port = new URL(browserWs).port;
  const targets = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json();
  const target = targets.find((t) => t.type === 'page');
  if (!target) throw new Error('no page target');
  const ws = new WebSocket(target.webSocketDebuggerUrl);
  await new Promise((res, rej) => { ws.onopen = res; ws.onerror = () => rej(new Error('cannot connect')); });
  const reply = new Promise((res) => {
    ws.onmessage = (m) => {
      const msg = JSON.parse(m.data);
      if (msg.id === 1) res(msg);
    };
  });
  ws.send(JSON.stringify({ id: 1, method: 'Page.captureScreenshot', params: { format: 'png', captureBeyondViewport: true } }));
  const msg = await reply;
  ws.close();
  if (!msg.result?.data) throw new Error(JSON.stringify(msg.error ?? msg));
  await writeFile(out, Buffer.from(msg.result.data, 'base64'));
}

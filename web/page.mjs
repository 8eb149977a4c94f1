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
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve, inside, inChromium } from '../conformance/webgpu/headless.mjs';

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

let resolveReport;
const reported = new Promise((r) => { resolveReport = r; });
// web/ (with its node_modules: TF.js for the bench page) and examples/web/, nothing else
const server = await serve(
  (p) => (p.startsWith('/web/') ? inside(path.join(repo, 'web'), p.slice('/web/'.length), { modules: true })
    : p.startsWith('/examples/web/') ? inside(path.join(repo, 'examples', 'web'), p.slice('/examples/web/'.length)) : null),
  (p, body) => {
    if (p === '/log') console.log(body);
    else if (p === '/report') {
      try {
        resolveReport(JSON.parse(body));
      } catch (e) {
        resolveReport({ error: `the page's report is not JSON (${e.message}): ${body.slice(0, 200)}` });
      }
    }
  },
);
const query = new URLSearchParams([['report', '1'], ...opts.query]);
const url = `http://127.0.0.1:${server.port}/${opts.page}?${query}`;
if (opts.serve) {
  console.log(`serving: open ${url}`);
} else {
  const r = await inChromium({
    chromium: opts.chromium,
    url,
    timeout: opts.timeout,
    reported,
    adapterFlags: ['--use-webgpu-adapter=swiftshader'],
    devtools: !!opts.screenshot,
    whileOpen: opts.screenshot && (async (devtools) => {
      await screenshot(devtools, opts.screenshot);
      console.log(`screenshot: ${opts.screenshot}`);
    }),
  });
  server.close();
  if (r.error) {
    console.log(`error: ${r.error}`);
    console.log(`page: 0 passed, 1 failed (the page did not report)`);
    process.exit(1);
  }
  console.log(`page: ${r.passed} passed, ${r.failed} failed`);
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

// What both page runners share (browser.mjs: the replay page; web/page.mjs: the JavaScript
// package's pages): a local file server that takes the page's POSTs, and headless Chromium
// with WebGPU, run until the page reports.
import http from 'node:http';
import { spawn } from 'node:child_process';
import { readFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

const types = {
  '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.json': 'application/json',
  '.wasm': 'application/wasm', '.wgsl': 'text/plain', '.png': 'image/png', '.css': 'text/css',
};

// Serves on 127.0.0.1 (a free port): GET answers the file `locate(pathname)` names (null: 403),
// POST hands (pathname, body) to `onPost`. Resolves to the server, its port in `.port`.
export async function serve(locate, onPost) {
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, 'http://x');
    if (req.method === 'POST') {
      let body = '';
      for await (const chunk of req) body += chunk;
      res.end('ok');
      onPost(url.pathname, body);
      return;
    }
    const file = locate(decodeURIComponent(url.pathname));
    if (!file) {
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
  server.port = server.address().port;
  return server;
}

// `rel` below `root`, or null when it would leave it or enter a node_modules folder
// (unless `modules`).
export function inside(root, rel, { modules = false } = {}) {
  const file = path.resolve(root, rel);
  if (!file.startsWith(root + path.sep)) return null;
  if (!modules && file.includes(`${path.sep}node_modules${path.sep}`)) return null;
  return file;
}

// Opens `url` in headless Chromium with WebGPU (`adapterFlags` choose the adapter) and
// resolves to what `reported` resolves to, or `{ error }` when Chromium exits first or
// `timeout` seconds pass. While the page is open, `whileOpen(devtoolsUrl)` may run (with
// `devtools`: Chromium is started with a DevTools port). Chromium is stopped and its
// profile removed before this resolves.
export async function inChromium({ chromium, url, adapterFlags, timeout, reported, devtools = false, whileOpen = null }) {
  const profile = await mkdtemp(path.join(tmpdir(), 'wgconv-chromium-'));
  const flags = [
    '--headless=new', '--no-sandbox', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--disable-quic', `--user-data-dir=${profile}`,
    // developer features: the adapter's real name and driver in adapter.info
    '--enable-unsafe-webgpu', '--enable-webgpu-developer-features', '--enable-features=Vulkan',
    '--window-size=1280,800', ...adapterFlags, ...(devtools ? ['--remote-debugging-port=0'] : []), url,
  ];
  const child = spawn(chromium, flags, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  let devtoolsUrl = null;
  child.stderr.on('data', (d) => {
    stderr = (stderr + d).slice(-8000);
    devtoolsUrl ??= /DevTools listening on (ws:\/\/\S+)/.exec(stderr)?.[1] ?? null;
  });
  let timer;
  let exited = false;
  const failed = new Promise((res) => {
    timer = setTimeout(() => res({ error: `no result after ${timeout} s; chromium said:\n${stderr}` }), timeout * 1000);
    child.on('exit', (code) => {
      exited = true;
      res({ error: `chromium exited (${code}) before the page reported:\n${stderr}` });
    });
    child.on('error', (e) => {
      exited = true;
      res({ error: `cannot start ${chromium}: ${e.message}` });
    });
  });
  // a runner killed from outside (a timeout around it) takes its Chromium along
  const stop = () => {
    child.kill('SIGKILL');
    process.exit(1);
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  const r = await Promise.race([reported, failed]);
  clearTimeout(timer);
  if (!r.error && whileOpen) {
    try {
      await whileOpen(devtoolsUrl);
    } catch (e) {
      r.error = e.message;
    }
  }
  child.removeAllListeners('exit');
  if (!exited) {
    const gone = new Promise((res) => child.once('exit', res));
    child.kill('SIGTERM');
    await Promise.race([gone, new Promise((res) => setTimeout(res, 5000))]);
    child.kill('SIGKILL');
  }
  process.removeListener('SIGTERM', stop);
  process.removeListener('SIGINT', stop);
  // Chromium's helper processes may still be writing the profile for a moment
  await rm(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 }).catch(() => {});
  return r;
}

// The JavaScript package (web/pkg, `bash build.sh`) on Dawn in Node, as a page would use it:
//   node --import ../conformance/webgpu/dawn-globals.mjs test.mjs     (npm test)
// Runs checks.mjs; prints `js package: N passed, M failed`; exit 1 on any failure.
import { readFile } from 'node:fs/promises';
import init, { Wgconv } from './pkg/wgconv_web.js';
import { runChecks } from './checks.mjs';

const wasm = await init({ module_or_path: await readFile(new URL('./pkg/wgconv_web_bg.wasm', import.meta.url)) });
const { passed, failed } = await runChecks(Wgconv, (line) => console.log(line), { memory: wasm.memory });
console.log(`js package: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);

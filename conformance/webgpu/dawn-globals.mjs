// Preloaded into Node (`node --import ./dawn-globals.mjs`) to give wasm code a browser's
// WebGPU entry point on Dawn: `navigator.gpu` from the `webgpu` package, its GPU* classes,
// and a `Window` global, which is how wgpu's WebGPU back end recognises a page.
// The back end comes from DAWN_BACKEND (default `vulkan`; `null` compiles shaders, runs none).
import { create, globals } from 'webgpu';

Object.assign(globalThis, globals);
const gpu = create([`backend=${process.env.DAWN_BACKEND ?? 'vulkan'}`]);
Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true });
globalThis.Window ??= class Window {};

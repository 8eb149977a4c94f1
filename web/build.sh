#!/usr/bin/env bash
# Builds the JavaScript package into web/pkg/: the wgconv-web crate for wasm32 (release),
# then wasm-bindgen (the version Cargo.lock pins; tools/web_check.sh installs it) for ES
# modules (`--target web`: browsers, and Node given the bytes). Prints the .wasm size, raw
# and gzipped.
set -euo pipefail
cd "$(dirname "$0")"
cargo build --release --quiet --target wasm32-unknown-unknown -p wgconv-web
wasm-bindgen --target web --out-dir pkg ../target/wasm32-unknown-unknown/release/wgconv_web.wasm
raw=$(stat -c %s pkg/wgconv_web_bg.wasm)
gz=$(gzip -9 -c pkg/wgconv_web_bg.wasm | wc -c)
echo "web: pkg/wgconv_web_bg.wasm $raw bytes, $gz gzipped (gzip -9)"

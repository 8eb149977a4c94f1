#!/usr/bin/env bash
# The library in the browser (issue #22): tests/web.rs, built for wasm32-unknown-unknown with
# wgpu's WebGPU back end, run by wasm-bindgen-test-runner
#   chromium swiftshader   in headless Chromium through chromedriver (WebGPU on Chromium's
#                          bundled SwiftShader; flags in tools/webdriver.json)
#   dawn vulkan mesa-25    in Node on Dawn (the npm `webgpu` package, preloaded by
#                          conformance/webgpu/dawn-globals.mjs) on Mesa 25's lavapipe: Dawn
#                          refuses the system's Mesa 22
# and the JavaScript package (web/: built by web/build.sh, which prints the .wasm's size):
# web/checks.mjs on the same Dawn (web/test.mjs) and in headless Chromium (web/test.html,
# opened by web/page.mjs), a short run of the bench page against TF.js (web/bench.html), and
# the example page (examples/web/index.html, which checks its own blur) and the conformance
# page (web/conformance.html, one case per op).
# Installs what it needs: the wasm32 target, wasm-bindgen-cli at the version Cargo.lock pins
# for wasm-bindgen (the runner must match it), Debian's chromium and chromium-driver, the npm
# packages of conformance/webgpu (from its lock file), Mesa 25 (tools/fetch_mesa25.sh).
# Prints one line per host, `NAME: N passed, M failed (adapter)`, then the total; exit 1 on
# any failure (a host that cannot run counts as one failure).
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
if [ -z "${XDG_RUNTIME_DIR:-}" ] || [ ! -d "${XDG_RUNTIME_DIR}" ]; then
    export XDG_RUNTIME_DIR="$(mktemp -d)"
    chmod 700 "$XDG_RUNTIME_DIR"
fi
out="$(mktemp -d)"

echo "web: [${SECONDS} s] fetching what the web tests need"
rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || { echo "web: cannot add the wasm32 target" >&2; exit 1; }
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
ver="$(sed -n '/^name = "wasm-bindgen"$/{n;s/^version = "\(.*\)"$/\1/p;}' Cargo.lock)"
[ -n "$ver" ] || { echo "web: no wasm-bindgen in Cargo.lock" >&2; exit 1; }
if [ "$(wasm-bindgen-test-runner --version 2>/dev/null || true)" != "wasm-bindgen-test-runner $ver" ]; then
    # (not --locked: its lock names crates newer than some registry mirrors hold)
    cargo install --quiet wasm-bindgen-cli --version "$ver"
fi
missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
if [ ${#missing[@]} -gt 0 ]; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
(cd conformance/webgpu && npm ci --no-audit --no-fund --silent)
mesa25_env="$(tools/fetch_mesa25.sh)"

echo "web: [${SECONDS} s] building tests/web.rs for wasm32"
test_cmd=(cargo test --release --target wasm32-unknown-unknown --no-default-features --features conformance --test web)
"${test_cmd[@]}" --quiet --no-run

source tools/deadline.sh
export WASM_BINDGEN_TEST_TIMEOUT=900
rows=()
total_pass=0
total_fail=0
# NAME LOG COMMAND...: runs COMMAND (its output to LOG) as one row. The counts come from the
# last summary line it prints (the test runner's `test result: … N passed; M failed`, or
# `…: N passed, M failed` from test.mjs and web/page.mjs). A row fails when nothing passed,
# when no summary came, or when the command failed with no failure counted: a host that
# cannot run is a failure, never a pass of zero.
run_row() {
    local name="$1" log="$2" rc=0 p f adapter
    shift 2
    : >"$log"
    "$@" >>"$log" 2>&1 || rc=$?
    p="$(sed -n -e 's/^test result: .* \([0-9]*\) passed; \([0-9]*\) failed.*/\1/p' \
        -e 's/^[a-z ]*: \([0-9]*\) passed, \([0-9]*\) failed.*/\1/p' "$log" | tail -1)"
    f="$(sed -n -e 's/^test result: .* \([0-9]*\) passed; \([0-9]*\) failed.*/\2/p' \
        -e 's/^[a-z ]*: \([0-9]*\) passed, \([0-9]*\) failed.*/\2/p' "$log" | tail -1)"
    adapter="$(sed -n -e 's/.*wgconv web tests on: //p' -e 's/^adapter: \([^;]*\).*/\1/p' "$log" | head -1 | cut -c1-100)"
    if [ -z "$p" ] || [ "$p" -eq 0 ] || { [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; }; then
        tail -15 "$log"
        p="${p:-0}"
        f=$(( ${f:-0} > 0 ? ${f:-0} : 1 ))
        adapter="did not run as it should (exit $rc), see $log"
    fi
    grep -E '^test .* FAIL|^FAIL' "$log" || true
    rows+=("$(printf '%-30s %s passed, %s failed (%s)' "$name:" "$p" "$f" "$adapter")")
    total_pass=$((total_pass + p))
    total_fail=$((total_fail + f))
}
chromium="$(command -v chromium)"
# (each page's own bound below the outer one, so that the runner stops its Chromium itself)
page() {
    local t
    t="$(bound 1300)"
    timeout "$t" node web/page.mjs "$1" --chromium "$chromium" --timeout $((t > 100 ? t - 60 : t / 2)) "${@:2}"
}
with_dawn() {
    (
        eval "$mesa25_env"
        export NODE_ARGS="--import=$PWD/conformance/webgpu/dawn-globals.mjs" DAWN_BACKEND=vulkan
        "$@"
    )
}

echo "web: [${SECONDS} s] tests/web.rs in chromium swiftshader"
run_row "chromium swiftshader" "$out/chromium.log" env WASM_BINDGEN_USE_BROWSER=1 \
    CHROMEDRIVER="$(command -v chromedriver)" WASM_BINDGEN_TEST_WEBDRIVER_JSON="$PWD/tools/webdriver.json" \
    timeout "$(bound 1200)" "${test_cmd[@]}" -- --nocapture

echo "web: [${SECONDS} s] tests/web.rs on dawn vulkan mesa-25"
run_row "dawn vulkan mesa-25" "$out/dawn.log" with_dawn timeout "$(bound 1200)" "${test_cmd[@]}" -- --nocapture

echo "web: [${SECONDS} s] the JavaScript package (web/): build"
# (web/pkg is not tracked: a stale one must not stand in for a failed build)
rm -rf web/pkg
size="did not build, see $out/package-build.log"
if (cd web && bash build.sh && npm ci --no-audit --no-fund --silent) >"$out/package-build.log" 2>&1; then
    size="$(sed -n 's/^web: //p' "$out/package-build.log")"
fi

echo "web: [${SECONDS} s] the JavaScript package on dawn vulkan mesa-25"
run_row "js package on dawn" "$out/package.log" with_dawn bash -c \
    "cd web && timeout $(bound 900) node --import ../conformance/webgpu/dawn-globals.mjs test.mjs"

echo "web: [${SECONDS} s] the JavaScript package in chromium swiftshader"
run_row "js package in chromium" "$out/package-chromium.log" page web/test.html

# A smoke run of the same-page bench (4 cases, short): its outputs are checked against a
# float64 reference before timing, for wgconv and TF.js alike; its times are not judged here.
echo "web: [${SECONDS} s] the bench page (wgconv and TF.js WebGPU) in chromium swiftshader, 4 cases"
run_row "bench page in chromium" "$out/bench.log" page web/bench.html \
    --query ids=r50_c4,mbv2_dw,dcgan_up,dcn_v2 --query seconds=0.2

echo "web: [${SECONDS} s] the example page (examples/web) in chromium swiftshader"
run_row "example page in chromium" "$out/example.log" page examples/web/index.html

echo "web: [${SECONDS} s] the conformance page (web/conformance.html) in chromium swiftshader, 1 case per op"
run_row "conformance page in chromium" "$out/conformance-page.log" page web/conformance.html \
    --query cases=1 --query probes=none

echo
echo "web tests (tests/web.rs on wasm32; logs in $out)"
printf '%s\n' "${rows[@]}"
echo "wasm size: $size"
echo "web: $total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]

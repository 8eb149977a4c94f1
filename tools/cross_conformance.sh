#!/usr/bin/env bash
# The cross-implementation conformance matrix: the same cases on every WebGPU implementation
# and driver this machine can run, no GPU needed. Fetches what it needs itself: the npm
# packages of conformance/webgpu (from its lock file), Mesa 25's lavapipe (Debian
# bookworm-backports, unpacked privately by tools/fetch_mesa25.sh) and Debian's Chromium.
#
#   tools/cross_conformance.sh [--cases N] [--wgpu-cases N] [--gl-cases N] [--full] [--seed S] [--out DIR]
#
#   wgpu vulkan mesa-22      wgconv conformance on the system's lavapipe (with the probes)
#   naga static              every shader × override set × {SPIR-V, MSL, HLSL, GLSL}
#   wgpu gl                  wgconv conformance through GL (llvmpipe via EGL; --gl-cases:
#                            GL compute runs on one thread); "unavailable"
#                            where the machine has no GL adapter (not a failure)
#   wgpu vulkan mesa-25      wgconv conformance on Mesa 25's lavapipe
#   dawn vulkan mesa-25      the replay export run by Dawn (Chrome's engine, Tint) in Node
#   tint static (dawn null)  every shader × override set compiled by Tint, no driver
#   chromium swiftshader     the replay page in headless Chromium, full WebGPU
#   chromium compat          the replay page in WebGPU's compatibility mode (ANGLE, GL ES on
#                            the system's Vulkan driver)
#
# One line per implementation, `NAME: N passed, M failed`, then the totals; exit status 1 on
# any failure (an implementation that cannot run counts as one failure, GL excepted).
# --cases N: cases per op (default 20); --wgpu-cases N: per op on the wgpu Vulkan Mesa 22 row, the
# quickest (default: --cases); --gl-cases N: per op through GL, the slowest (default: --cases);
# --full: 200 per op everywhere and the full probes. Measured on a fresh 2-core machine (.ci/run,
# --cases 10 --wgpu-cases 50, 2026-12-03): Mesa 22 with the probes and the static check 100 s,
# GL 398 s, Mesa 25 with 50 cases 356 s (its shader compiles are slower), Dawn 215 s, Chromium
# 282 s, compat 182 s; so Mesa 25 runs --cases, like the replays.
set -euo pipefail
cd "$(dirname "$0")/.."

cases=20
wgpu_cases=""
gl_cases=""
probes=quick
seed=2026
out=""
while [ $# -gt 0 ]; do
    case "$1" in
        --cases) cases="$2"; shift 2 ;;
        --wgpu-cases) wgpu_cases="$2"; shift 2 ;;
        --gl-cases) gl_cases="$2"; shift 2 ;;
        --full) cases=200; wgpu_cases=200; gl_cases=200; probes=full; shift ;;
        --seed) seed="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        *) echo "cross_conformance: unknown argument $1" >&2; exit 2 ;;
    esac
done
[ -n "$out" ] || out="$(mktemp -d)"
[ -n "$wgpu_cases" ] || wgpu_cases="$cases"
[ -n "$gl_cases" ] || gl_cases="$cases"
mkdir -p "$out"
if [ -z "${XDG_RUNTIME_DIR:-}" ] || [ ! -d "${XDG_RUNTIME_DIR}" ]; then
    export XDG_RUNTIME_DIR="$(mktemp -d)"
    chmod 700 "$XDG_RUNTIME_DIR"
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

echo "cross: [${SECONDS} s] fetching what the matrix needs"
cargo build --release --quiet
wgconv=target/release/wgconv
(cd conformance/webgpu && npm ci --no-audit --no-fund --silent)
mesa25_env="$(tools/fetch_mesa25.sh)"
chromium="$(command -v chromium || true)"
if [ -z "$chromium" ]; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
    chromium="$(command -v chromium)"
fi

source tools/deadline.sh

rows=()
total_pass=0
total_fail=0
row() { # NAME PASSED FAILED [NOTE]
    rows+=("$(printf '%-34s %s passed, %s failed%s' "$1:" "$2" "$3" "${4:+ ($4)}")")
    total_pass=$((total_pass + $2))
    total_fail=$((total_fail + $3))
}
# `passed failed static_checked static_failed` of a `wgconv conformance --json` report
wgpu_counts() {
    node -e '
        const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
        let p = 0, c = 0, s = 0, sf = 0;
        for (const a of r) {
            for (const o of a.ops) { p += o.passed; c += o.cases; }
            if (a.static_check) { s += a.static_check.checked; sf += a.static_check.failures.length; }
        }
        console.log(p, c - p, s, sf);' "$1"
}
# `passed failed skipped` from the `NAME: N passed, M failed[, K skipped]` line a runner printed last
runner_counts() {
    sed -n 's/.*: \([0-9]*\) passed, \([0-9]*\) failed\(, \([0-9]*\) skipped\)\{0,1\}$/\1 \2 \4/p' "$1" | tail -1
}
# COMMAND... with Mesa 25's lavapipe as the Vulkan driver
with_mesa25() {
    (
        eval "$mesa25_env"
        exec "$@"
    )
}
# NAME LOG COMMAND...: a `wgconv conformance` command (its --json goes to LOG.json) as one
# row, and the naga row when it ran the static check
wgpu_row() {
    local name="$1" log="$2"
    shift 2
    echo "cross: [${SECONDS} s] $name"
    local rc=0
    "$@" --json "$log.json" >"$log" 2>&1 || rc=$?
    if [ ! -s "$log.json" ]; then
        if grep -q "no GPU adapter found" "$log" && [ "$name" = "wgpu gl" ]; then
            rows+=("$(printf '%-34s unavailable (no GL adapter on this machine)' "$name:")")
            return
        fi
        tail -5 "$log"
        row "$name" 0 1 "did not run$( [ "$rc" -ne 124 ] || echo ": cut at its time bound"), see $log"
        return
    fi
    read -r p f s sf < <(wgpu_counts "$log.json")
    grep '^FAIL' "$log" | head -20 || true
    [ "$rc" -eq 0 ] || [ "$f" -gt 0 ] || [ "$sf" -gt 0 ] || f=1 # failed for another reason
    row "$name" "$p" "$f" "$(sed -n 's/^adapter: //p' "$log" | head -1)"
    if [ "$s" -gt 0 ]; then
        row "naga static (spv, msl, hlsl, glsl)" $((s - sf)) "$sf"
    fi
}
# A JavaScript runner NAME LOG COMMAND...: one row from its closing line
js_row() {
    local name="$1" log="$2"
    shift 2
    echo "cross: [${SECONDS} s] $name"
    "$@" >"$log" 2>&1 || true
    local counts
    counts="$(runner_counts "$log")"
    if [ -z "$counts" ]; then
        tail -5 "$log"
        row "$name" 0 1 "did not run, see $log"
        return
    fi
    grep '^FAIL' "$log" | head -20 || true
    local p f k
    read -r p f k <<<"$counts"
    local note
    note="$(sed -n 's/^adapter: //p' "$log" | head -1 | cut -c1-160)"
    row "$name" "$p" "$f" "${k:+$k skipped: no shader-f16; }$note"
}

# The runner must be able to fail: the first case with one expected value moved by 1 must
# fail and name that element.
selfcheck() {
    local bad="$out/replay-wrong-value" log="$out/selfcheck.log"
    echo "cross: [${SECONDS} s] runner self-check"
    rm -rf "$bad"
    cp -r "$replay" "$bad"
    node -e '
        const fs = require("fs"), dir = process.argv[1];
        const first = JSON.parse(fs.readFileSync(`${dir}/replay.json`, "utf8")).cases[0];
        const c = JSON.parse(fs.readFileSync(`${dir}/${first}`, "utf8"));
        const file = `${dir}/${c.outputs[0].expected}`, b = fs.readFileSync(file);
        b.writeDoubleLE(b.readDoubleLE(0) + 1, 0);
        fs.writeFileSync(file, b);' "$bad"
    if with_mesa25 timeout "$(bound 300)" node "$runner/node.mjs" "$bad" --backend vulkan --limit 1 >"$log" 2>&1; then
        row "runner self-check" 0 1 "a wrong expected value passed, see $log"
    elif grep -q "output 0 element 0: got" "$log"; then
        row "runner self-check (a wrong value fails)" 1 0
    else
        row "runner self-check" 0 1 "the failure did not name element 0, see $log"
    fi
}

conf=("$wgconv" conformance --seed "$seed")
wgpu_row "wgpu vulkan mesa-22" "$out/wgpu-vulkan.log" timeout "$(bound 1800)" "${conf[@]}" --cases "$wgpu_cases" \
    --backend vulkan --probes "$probes"
# (GL takes its own count, --gl-cases: llvmpipe runs GL compute on one thread; with 50 cases
# per op this row was not done after 560 s where Vulkan's took 145 s with the probes and the
# static check, on 2 cores)
wgpu_row "wgpu gl" "$out/wgpu-gl.log" timeout "$(bound 1800)" "${conf[@]}" --cases "$gl_cases" --backend gl \
    --no-static --probes none
wgpu_row "wgpu vulkan mesa-25" "$out/wgpu-mesa25.log" with_mesa25 timeout "$(bound 1800)" "${conf[@]}" \
    --cases "$cases" --backend vulkan --no-static --probes "$probes"

echo "cross: [${SECONDS} s] exporting the replay ($cases cases per op and the probes, WebGPU's default limits)"
replay="$out/replay"
if ! timeout "$(bound 1800)" "${conf[@]}" --cases "$cases" --backend vulkan --probes "$probes" --export "$replay" \
    >"$out/export.log" 2>&1; then
    tail -5 "$out/export.log"
    row "replay export" 0 1 "see $out/export.log"
fi
runner=conformance/webgpu
# (a bound on each runner: a hung device must fail the row, not hold CI to its limit)
js_row "dawn vulkan mesa-25 (replay)" "$out/dawn-vulkan.log" \
    with_mesa25 timeout "$(bound 1800)" node "$runner/node.mjs" "$replay" --backend vulkan
selfcheck
js_row "tint static (dawn null)" "$out/tint.log" timeout "$(bound 900)" node "$runner/node.mjs" "$replay" --backend null --static
js_row "chromium swiftshader (replay)" "$out/chromium.log" \
    timeout "$(bound 1000)" node "$runner/browser.mjs" "$replay" --chromium "$chromium" --adapter swiftshader
js_row "chromium compat angle (replay)" "$out/chromium-compat.log" \
    timeout "$(bound 1000)" node "$runner/browser.mjs" "$replay" --chromium "$chromium" --adapter angle-vulkan

echo
echo "cross-implementation conformance (seed $seed; $wgpu_cases cases per op on wgpu Vulkan Mesa 22, $gl_cases on GL, $cases on Mesa 25 and the replays; logs in $out)"
printf '%s\n' "${rows[@]}"
echo "total: $total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]

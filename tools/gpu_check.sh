#!/usr/bin/env bash
# The one-shot check for the lent GPU machine (an H200; issue #20): wgconv's info, bench
# (f32, --f16, --algo all, --backward) and conformance on its NVIDIA Vulkan adapter, then
# PyTorch/cuDNN on the same suite shapes (TF32 off), JSON and CSV of each into OUTDIR, and
# a table of the two side by side last. Sized for one `run` call of at most 8 minutes.
#
#   tools/gpu_check.sh [--dry-run] [OUTDIR]      (OUTDIR: else $OUT, else ./gpu_check_out)
#
# On the GPU machine (prepared here, see the device README): a release binary built here is
# carried (target/release/wgconv, or $WGCONV_BIN), and the Vulkan loader as Debian packages
# in .gl/ (`apt-get download libvulkan1` into .gl, carried); python3 there has torch. One call:
#   run(command="bash tools/gpu_check.sh", carry=["target/release/wgconv", ".gl"], timeout_s=540)
# (the steps share GPU_CHECK_SECONDS, 480 by default, whatever each one's own limit).
# --dry-run runs every step but the GPU part here, on whatever adapter wgpu finds, with a few
# quick cases (PyTorch on the CPU if it imports, else its script only compiled): .ci/run runs it,
# so the script is known to work before a GPU is lent.
set -uo pipefail
dry=0
if [ "${1:-}" = "--dry-run" ]; then
  dry=1
  shift
fi
# OUTDIR and WGCONV_BIN relative to where the script was called from; then the repo root.
out=${1:-${OUT:-gpu_check_out}}
mkdir -p "$out" && out=$(cd "$out" && pwd) || exit 2
bin=${WGCONV_BIN:-}
[ -z "$bin" ] || bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
cd "$(dirname "$0")/.."
bin=${bin:-$PWD/target/release/wgconv}
# The whole run's budget (the device call's limit less the transfers); each step gets what is left.
deadline=$(($(date +%s) + ${GPU_CHECK_SECONDS:-480}))
if [ ! -x "$bin" ]; then
  echo "gpu_check: no wgconv binary at $bin (build it with cargo build --release, carry target/release/wgconv)" >&2
  exit 2
fi
say() { echo "gpu_check: $*" | tee -a "$out/steps.log"; }
failed=0
# step NAME TIMEOUT CMD...: its output in OUTDIR/NAME.txt, its exit status in steps.log; at
# most TIMEOUT seconds and never past the deadline less 20 s (for the table); skipped when
# under 10 s are left.
step() {
  local name=$1 limit=$2 t0 rc left
  shift 2
  left=$((deadline - $(date +%s) - 20))
  if [ $left -lt 10 ]; then
    say "$name: skipped, the run's time is spent"
    failed=$((failed + 1))
    return 0
  fi
  [ "$limit" -lt "$left" ] || limit=$left
  t0=$(date +%s)
  timeout "$limit" "$@" > "$out/$name.txt" 2>&1
  rc=$?
  say "$name: exit $rc after $(($(date +%s) - t0)) s"
  [ $rc -eq 0 ] || failed=$((failed + 1))
}

if [ $dry -eq 0 ]; then
  # The Vulkan loader the machine lacks, and the NVIDIA driver's ICD where the loader does not find it.
  libs=$(ldconfig -p 2> /dev/null || true)
  if [[ "$libs" != *libvulkan.so.1* ]]; then
    for f in .gl/*.deb; do
      [ -e "$f" ] && { dpkg -x "$f" / || say "could not unpack $f (root needed)"; }
    done
    ldconfig
  fi
  icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  [ -f "$icd" ] && export VK_DRIVER_FILES=${VK_DRIVER_FILES:-$icd}
  export WGPU_BACKEND=vulkan
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$out/nvidia_smi.txt" 2>&1
  quick=()
  cases=50
  probes=quick
  static=()
  torch_args=(--device cuda)
  limit=150
else
  quick=(--quick --only r50_c3,mbv2_dw,dcgan_up,dcn_v2 --runs 2 --warmup 1 --min-time 0 --check-points 16)
  cases=2
  probes=none
  static=(--no-static)
  torch_args=(--device cpu --only r50_c3,dcgan_up --runs 2 --warmup 1)
  limit=300
fi

step info 60 "$bin" info
step bench_f32 "$limit" "$bin" bench ${quick[@]+"${quick[@]}"} --json "$out/bench_f32.json" --csv "$out/bench_f32.csv" --plot "$out/bench_f32.svg" --roofline "$out/roofline_f32.svg"
step bench_f16 "$limit" "$bin" bench ${quick[@]+"${quick[@]}"} --f16 --no-ceilings --json "$out/bench_f16.json" --csv "$out/bench_f16.csv"
step bench_algos "$limit" "$bin" bench ${quick[@]+"${quick[@]}"} --algo all --no-ceilings --json "$out/bench_algos.json" --csv "$out/bench_algos.csv"
step bench_backward "$limit" "$bin" bench ${quick[@]+"${quick[@]}"} --backward --no-ceilings --json "$out/bench_backward.json" \
  --csv "$out/bench_backward.csv"
step conformance "$limit" "$bin" conformance --cases "$cases" --probes "$probes" ${static[@]+"${static[@]}"} --json "$out/conformance.json"
if python3 -c 'import torch, torchvision' 2> /dev/null; then
  step torch "$limit" python3 tools/gpu_torch.py "${torch_args[@]}" --json "$out/torch.json" --csv "$out/torch.csv"
elif [ $dry -eq 1 ]; then
  step torch_compiles 60 python3 -m py_compile tools/gpu_torch.py
else
  say "torch: python3 has no torch here"
  failed=$((failed + 1))
fi
python3 tools/gpu_table.py "$out" | tee "$out/table.txt"
say "$failed step(s) failed; files in $out"
[ $failed -eq 0 ]

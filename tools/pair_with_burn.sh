#!/usr/bin/env bash
# Times every case of the suite with wgconv and with the Burn peer (../shared/peers/burn-wgpu,
# built separately), alternating engine by engine and case by case, each run in a fresh
# process, for ROUNDS rounds; prints "round  id  wgconv_ms  burn_ms" (wall-clock medians).
# On a machine whose speed drifts, interleaving is what makes the ratios comparable.
#   tools/pair_with_burn.sh PATH/TO/peer-burn [ROUNDS]
set -euo pipefail
burn=${1:?usage: tools/pair_with_burn.sh PATH/TO/peer-burn [ROUNDS]}
rounds=${2:-3}
cd "$(dirname "$0")/.."
cargo build --release --quiet
ours=target/release/wgconv
tmp=$(mktemp -d)
ids=$(awk -F'|' 'NR > 3 && NF > 3 { gsub(/ /, "", $2); print $2 }' bench/shapes.md)
median() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print((d['results'] if isinstance(d, dict) else d)[0]['median_ms'])" "$1"; }
for r in $(seq 1 "$rounds"); do
    for id in $ids; do
        "$ours" bench --only "$id" --wall-clock --no-ceilings --json "$tmp/o.json" >/dev/null 2>&1
        (cd "$(dirname "$burn")" && "$burn" --only "$id" --json "$tmp/b.json" >/dev/null 2>&1)
        printf '%s\t%s\t%s\t%s\n' "$r" "$id" "$(median "$tmp/o.json")" "$(median "$tmp/b.json")"
    done
done

#!/usr/bin/env bash
# Times every case of the suite with wgconv and with the Burn peer (../shared/peers/burn-wgpu,
# built separately), alternating engine by engine and case by case, each run in a fresh
# process, for ROUNDS rounds; prints "round  id  wgconv_ms  burn_ms" (wall-clock medians).
# On a machine whose speed drifts, interleaving is what makes the ratios comparable.
# With DIR, each round's medians are also kept as DIR/{burn,wgconv}-rN.json ([{id, median_ms}],
# what `wgconv compare` reads), and the table of `wgconv compare` (each engine's fastest
# round per case, the ratios, the geometric mean) is written to DIR/table.md and printed.
#   tools/pair_with_burn.sh PATH/TO/peer-burn [ROUNDS] [DIR]
set -euo pipefail
burn=$(realpath "${1:?usage: tools/pair_with_burn.sh PATH/TO/peer-burn [ROUNDS] [DIR]}")
rounds=${2:-3}
out=${3:-}
cd "$(dirname "$0")/.."
cargo build --release --quiet
ours=target/release/wgconv
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
[ -n "$out" ] && mkdir -p "$out"
ids=$(awk -F'|' 'NR > 3 && NF > 3 { gsub(/ /, "", $2); print $2 }' bench/shapes.md)
median() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print((d['results'] if isinstance(d, dict) else d)[0]['median_ms'])" "$1"; }
for r in $(seq 1 "$rounds"); do
    : > "$tmp/round.tsv"
    for id in $ids; do
        "$ours" bench --only "$id" --wall-clock --no-ceilings --json "$tmp/o.json" >/dev/null 2>&1
        (cd "$(dirname "$burn")" && "$burn" --only "$id" --json "$tmp/b.json" >/dev/null 2>&1)
        line=$(printf '%s\t%s\t%s\t%s' "$r" "$id" "$(median "$tmp/o.json")" "$(median "$tmp/b.json")")
        echo "$line"
        echo "$line" >> "$tmp/round.tsv"
    done
    if [ -n "$out" ]; then
        python3 - "$tmp/round.tsv" "$out" "$r" <<'EOF'
import json, sys
rows = [l.split("\t") for l in open(sys.argv[1]).read().splitlines()]
for col, name in ((2, "wgconv"), (3, "burn")):
    data = [{"id": r[1], "median_ms": float(r[col])} for r in rows]
    json.dump(data, open(f"{sys.argv[2]}/{name}-r{sys.argv[3]}.json", "w"), indent=1)
EOF
    fi
done
if [ -n "$out" ]; then
    join() { local IFS=,; echo "$*"; }
    sides=()
    for name in wgconv burn; do
        files=()
        for r in $(seq 1 "$rounds"); do files+=("$out/$name-r$r.json"); done
        sides+=("$(join "${files[@]}")")
    done
    "$ours" compare "${sides[@]}" --names wgconv,burn --markdown | tee "$out/table.md"
fi

#!/usr/bin/env python3
"""The current-results tables of BENCHMARKS.md and README.md, generated from the bench JSON
committed under bench/results/ (never copied by hand).

    python3 tools/results_tables.py [--check] [--wgconv PATH]

Each folder of bench/results/ (newest first by name, which starts with its date) gives:
- wgconv-rK.json and PEER-rK.json (K = 1, 2, ...; tools/pair_with_burn.sh writes them):
  `wgconv compare` of the rounds (each side's fastest median per case, the ratios, their
  geometric mean);
- wgconv.json holding forward and backward rows (`wgconv bench --backward`): each case's
  backward median over its forward median; with `--profile`, where each backward's time
  goes (its launches' medians summed per kernel, as shares);
- backward-rK.json, rounds of `wgconv bench --backward` run one after another: per case the
  ratio of each round (its backward over its forward, timed minutes apart in one process)
  and their median, the geometric mean of those medians, and the first profiled round's
  shares (in place of wgconv.json's table where a folder has both).

The tables replace what lies between `<!-- results:begin -->` and `<!-- results:end -->` in
BENCHMARKS.md, and the newest peer table what lies between `<!-- results:peer:begin -->` and
`<!-- results:peer:end -->` in README.md. --check writes nothing and exits 1 when either file
differs from what would be written (CI runs it). The peer tables need the wgconv binary
(--wgconv, else $WGCONV, else target/release/wgconv); the rest is this script.
"""

import argparse
import glob
import json
import math
import os
import re
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "bench", "results")


def rounds(folder, side):
    """The side's round files, round 1 first (r10 after r9)."""
    files = glob.glob(os.path.join(folder, f"{side}-r*.json"))
    number = lambda p: int(re.search(r"-r(\d+)\.json$", p).group(1)) if re.search(r"-r(\d+)\.json$", p) else 0
    return sorted((p for p in files if number(p) > 0), key=number)


def peer_table(wgconv, folder):
    """(peer name, markdown) of `wgconv compare` over the folder's rounds, or None."""
    ours = rounds(folder, "wgconv")
    if not ours:
        return None
    peers = sorted(
        {m.group(1) for p in glob.glob(os.path.join(folder, "*.json")) if (m := re.match(r"(.+)-r\d+\.json$", os.path.basename(p)))}
        - {"wgconv", "backward"}
    )
    if len(peers) != 1:
        return None
    peer = peers[0]
    theirs = rounds(folder, peer)
    rel = lambda ps: ",".join(os.path.relpath(p, ROOT) for p in ps)
    cmd = [wgconv, "compare", rel(ours), rel(theirs), "--names", f"wgconv,{peer}", "--markdown"]
    try:
        out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, encoding="utf-8")
    except OSError as e:
        sys.exit(f"results_tables: {wgconv}: {e} (build it, or give --wgconv / $WGCONV)")
    if out.returncode != 0:
        sys.exit(f"results_tables: {' '.join(cmd)}: {out.stderr.strip()}")
    command = f"wgconv compare {rel(ours)} {rel(theirs)} --names wgconv,{peer} --markdown"
    return peer, len(ours), command, out.stdout.strip()


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def medians(report):
    """({case: (forward ms, algorithm)}, {case: (backward ms, algorithm)}, case order) of one
    report: the fastest where a case ran more than once."""
    forward, backward, order = {}, {}, []
    for r in report.get("results", []):
        if r.get("status") != "ok":
            continue
        side = backward if r["op"].endswith("_backward") else forward
        if r["id"] not in side or r["median_ms"] < side[r["id"]][0]:
            side[r["id"]] = (r["median_ms"], r["algorithm"])
        if r["id"] not in order:
            order.append(r["id"])
    return forward, backward, order


def geomean(values):
    return math.exp(sum(math.log(v) for v in values) / len(values))


def adapter_of(report):
    return f"{report.get('adapter', '?')}, {report.get('backend', '?')}, {report.get('driver', '?')}"


def backward_table(path):
    """Markdown of each case's backward median over its forward median, or None."""
    report = load(path)
    forward, backward, order = medians(report)
    rows = [i for i in order if i in forward and i in backward]
    if not rows:
        return None
    lines = [
        "| case | forward | ms | backward | ms | backward / forward |",
        "| --- | --- | ---: | --- | ---: | ---: |",
    ]
    ratios = []
    for i in rows:
        (f_ms, f_alg), (b_ms, b_alg) = forward[i], backward[i]
        ratios.append(b_ms / f_ms)
        lines.append(f"| {i} | {f_alg} | {f_ms:.3f} | {b_alg} | {b_ms:.3f} | {b_ms / f_ms:.2f}× |")
    lines.append(f"| geometric mean ({len(rows)} cases) | | | | | {geomean(ratios):.2f}× |")
    profiled = profile_lines(report)
    if profiled:
        lines += ["", *profiled]
    return adapter_of(report), "\n".join(lines)


def backward_rounds_table(paths):
    """Markdown of rounds of backward runs: each round's backward / forward per case (both
    from the same process), their median, the geometric mean of the medians; or None."""
    reports = [load(p) for p in paths]
    runs = [medians(r) for r in reports]
    order = [i for i in runs[0][2] if all(i in f and i in b for f, b, _ in runs)]
    if not order:
        return None
    names = ", ".join(f"r{k + 1}" for k in range(len(runs)))
    lines = [
        f"| case | forward | backward | backward / forward ({names}) | median |",
        "| --- | --- | --- | --- | ---: |",
    ]
    middles = []
    for i in order:
        ratios = [b[i][0] / f[i][0] for f, b, _ in runs]
        middle = statistics.median(ratios)
        middles.append(middle)
        each = ", ".join(f"{r:.2f}" for r in ratios)
        lines.append(f"| {i} | {runs[0][0][i][1]} | {runs[0][1][i][1]} | {each} | {middle:.2f}× |")
    lines.append(f"| geometric mean ({len(order)} cases) | | | | {geomean(middles):.2f}× |")
    profiled = next((p for p in (profile_lines(r) for r in reports) if p), None)
    if profiled:
        lines += ["", *profiled]
    return adapter_of(reports[0]), "\n".join(lines)


def profile_lines(report):
    """Where each profiled backward row's time goes: its launches' medians summed per kernel,
    largest first, as shares of their sum (`wgconv bench --backward --profile`)."""
    lines = []
    for r in report.get("results", []):
        prof = r.get("profile")
        if r.get("status") != "ok" or not r["op"].endswith("_backward") or not prof or not prof.get("launches"):
            continue
        per_kernel, count = {}, {}
        for launch in prof["launches"]:
            per_kernel[launch["kernel"]] = per_kernel.get(launch["kernel"], 0.0) + launch["median_ms"]
            count[launch["kernel"]] = count.get(launch["kernel"], 0) + 1
        total = sum(per_kernel.values())
        if total <= 0:
            continue
        parts = [
            f"{k}{'' if count[k] == 1 else f' ×{count[k]}'} {100 * v / total:.0f}%"
            for k, v in sorted(per_kernel.items(), key=lambda kv: -kv[1])
        ]
        lines.append(f"| {r['id']} | {len(prof['launches'])} | {total:.3f} | {', '.join(parts)} |")
    if not lines:
        return []
    head = [
        "Where each backward's time goes (`--profile`: each launch in a pass of its own, medians of "
        "3 runs, summed per kernel):",
        "",
        "| case | launches | their sum, ms | kernels by share |",
        "| --- | ---: | ---: | --- |",
    ]
    return head + lines


def generate(wgconv):
    """(BENCHMARKS.md section, README.md peer table or None)."""
    parts = [
        "<!-- results:begin -->",
        "<!-- generated by tools/results_tables.py from bench/results/: edit the JSON or the script, not this -->",
    ]
    newest_peer = None
    for folder in sorted(glob.glob(os.path.join(RESULTS, "*")), reverse=True):
        if not os.path.isdir(folder):
            continue
        name = os.path.basename(folder)
        peer = peer_table(wgconv, folder)
        if peer:
            peer_name, count, command, table = peer
            parts += [
                "",
                f"### {name}: wgconv against {peer_name}, fastest of {count} interleaved rounds",
                "",
                f"`{command}`",
                "",
                table,
            ]
            if newest_peer is None:
                newest_peer = table
        # backward against forward: rounds (backward-rK.json), or one run (wgconv.json)
        backward_rounds = rounds(folder, "backward")
        single = os.path.join(folder, "wgconv.json")
        back, source, how = None, "", ""
        if backward_rounds:
            back = backward_rounds_table(backward_rounds)
            source, how = f"{os.path.relpath(folder, ROOT)}/backward-r*.json", f", {len(backward_rounds)} rounds"
        elif os.path.exists(single):
            back = backward_table(single)
            source = os.path.relpath(single, ROOT)
        if back:
            adapter, table = back
            parts += ["", f"### {name}: backward against forward{how} ({adapter}; `{source}`)", "", table]
    parts += ["", "<!-- results:end -->"]
    return "\n".join(parts), newest_peer


def splice(text, begin, end, body, path):
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    if not pattern.search(text):
        sys.exit(f"results_tables: {path}: no {begin} … {end}")
    return pattern.sub(lambda _: body, text, count=1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="exit 1 where a file differs; write nothing")
    ap.add_argument("--wgconv", default=os.environ.get("WGCONV", os.path.join(ROOT, "target", "release", "wgconv")))
    a = ap.parse_args()
    section, peer = generate(a.wgconv)
    targets = [("BENCHMARKS.md", "<!-- results:begin -->", "<!-- results:end -->", section)]
    if peer:
        body = f"<!-- results:peer:begin -->\n{peer}\n<!-- results:peer:end -->"
        targets.append(("README.md", "<!-- results:peer:begin -->", "<!-- results:peer:end -->", body))
    stale = []
    for file, begin, end, body in targets:
        path = os.path.join(ROOT, file)
        with open(path, encoding="utf-8") as f:
            old = f.read()
        new = splice(old, begin, end, body, file)
        if new != old:
            stale.append(file)
            if not a.check:
                with open(path, "w", encoding="utf-8") as f:
                    f.write(new)
    if a.check and stale:
        sys.exit(f"results_tables: {', '.join(stale)} differ from bench/results/: run python3 tools/results_tables.py")
    print("results_tables: " + (", ".join(stale) + " rewritten" if stale and not a.check else "up to date"))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The last table of tools/gpu_check.sh: wgconv's medians (bench JSON) beside PyTorch's
(gpu_torch.py's JSON) per suite case, and their ratio. Missing files leave their columns out.

    python3 tools/gpu_table.py OUTDIR
"""
import json
import os
import sys


def load(path):
    try:
        return json.load(open(path))
    except (OSError, ValueError):
        return None


def main():
    out = sys.argv[1]
    f32, f16, bwd = (load(os.path.join(out, f)) for f in ("bench_f32.json", "bench_f16.json", "bench_backward.json"))
    torch = load(os.path.join(out, "torch.json"))
    ours = {}
    for rep, key in [(f32, "f32"), (f16, "f16"), (bwd, "bwd")]:
        for r in (rep or {}).get("results", []):
            if r.get("status") != "ok":
                continue
            if key == "bwd" and not r["op"].endswith("_backward"):
                continue
            if key != "bwd" and r["op"].endswith("_backward"):
                continue
            ours.setdefault(r["id"], {})[key] = r["median_ms"]
    theirs = {}
    for r in (torch or {}).get("results", []):
        key = {("forward", "f32"): "f32", ("forward", "f16"): "f16", ("backward+forward", "f32"): "bwd"}[(r["pass"], r["dtype"])]
        theirs.setdefault(r["id"], {})[key] = r["median_ms"]
    adapter = (f32 or {}).get("adapter", "?")
    device = (torch or {}).get("device", "no PyTorch run")
    print(f"wgconv on {adapter}; PyTorch {(torch or {}).get('torch', '-')} cuDNN {(torch or {}).get('cudnn', '-')} on {device} (TF32 off)")
    print("ratio = PyTorch ms / wgconv ms (above 1: wgconv faster); backward: PyTorch's forward+backward against wgconv's backward")
    head = f"{'id':12} " + " ".join(f"{k + ' ' + s:>14}" for k in ("f32", "f16", "bwd") for s in ("wgconv", "torch", "ratio"))
    print(head)
    ratios = {"f32": [], "f16": [], "bwd": []}
    for id in sorted(set(ours) | set(theirs), key=lambda i: list(ours).index(i) if i in ours else 99):
        cells = []
        for k in ("f32", "f16", "bwd"):
            a, b = ours.get(id, {}).get(k), theirs.get(id, {}).get(k)
            r = b / a if a and b else None
            if r:
                ratios[k].append(r)
            cells += [f"{a:14.3f}" if a else f"{'-':>14}", f"{b:14.3f}" if b else f"{'-':>14}", f"{r:13.2f}x" if r else f"{'-':>14}"]
        print(f"{id:12} " + " ".join(cells))
    for k, rs in ratios.items():
        if rs:
            g = 1.0
            for r in rs:
                g *= r
            print(f"geometric mean {k}: {g ** (1 / len(rs)):.2f}x over {len(rs)} cases")


if __name__ == "__main__":
    main()

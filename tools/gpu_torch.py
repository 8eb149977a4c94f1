#!/usr/bin/env python3
"""PyTorch (cuDNN) on the wgconv benchmark suite, for tools/gpu_check.sh.

Reads the suite from bench/shapes.md (the table `wgconv bench` compiles in), runs each row's
op in PyTorch on the same shapes (conv2d, conv_transpose2d, torchvision's deform_conv2d),
forward in f32 and f16 and the f32 backward (every gradient), and writes median milliseconds
as JSON and CSV. TF32 is off (`torch.backends.cudnn.allow_tf32 = False`, likewise matmul): f32
is compared with f32. Timing: CUDA events around each run after warm-up runs (cudnn.benchmark
picks its algorithm there), medians.

    python3 tools/gpu_torch.py --json out.json --csv out.csv [--device cuda|cpu] [--only ids] [--runs N]
"""
import argparse
import csv
import json
import statistics
import time


def parse_suite(path):
    rows = []
    for line in open(path):
        line = line.strip()
        if not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if not cells or cells[0] in ("id", "") or cells[0].startswith("---"):
            continue
        h, w = (int(v) for v in cells[4].split("x"))
        kh, kw = (int(v) for v in cells[6].split("x"))
        rows.append({"id": cells[0], "op": cells[1], "n": int(cells[2]), "c_in": int(cells[3]), "h": h, "w": w,
                     "c_out": int(cells[5]), "kh": kh, "kw": kw, "stride": int(cells[7]), "pad": int(cells[8]),
                     "dil": int(cells[9]), "groups": int(cells[10])})
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", default="bench/shapes.md")
    ap.add_argument("--json", required=True)
    ap.add_argument("--csv", required=True)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--only", default="")
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    a = ap.parse_args()

    import torch
    import torch.nn.functional as F
    import torchvision

    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    dev = torch.device(a.device)
    cuda = dev.type == "cuda"
    only = set(filter(None, a.only.split(",")))

    def timed(fn):
        for _ in range(a.warmup):
            fn()
        times = []
        for _ in range(a.runs):
            if cuda:
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                fn()
                end.record()
                torch.cuda.synchronize()
                times.append(start.elapsed_time(end))
            else:
                t0 = time.perf_counter()
                fn()
                times.append((time.perf_counter() - t0) * 1e3)
        return statistics.median(times)

    results = []
    for r in parse_suite(a.shapes):
        if only and r["id"] not in only:
            continue
        g = torch.Generator(device="cpu").manual_seed(0)
        for dtype, name in [(torch.float32, "f32"), (torch.float16, "f16")]:
            if dtype == torch.float16 and not cuda:
                continue
            rnd = lambda *s: (torch.rand(*s, generator=g) * 2 - 1).to(dev, dtype)
            x = rnd(r["n"], r["c_in"], r["h"], r["w"])
            s, p, d, grp = r["stride"], r["pad"], r["dil"], r["groups"]
            if r["op"] == "conv2d":
                w = rnd(r["c_out"], r["c_in"] // grp, r["kh"], r["kw"])
                b = rnd(r["c_out"])
                fwd = lambda x, w, b: F.conv2d(x, w, b, stride=s, padding=p, dilation=d, groups=grp)
                args = [x, w, b]
            elif r["op"] == "conv_transpose2d":
                w = rnd(r["c_in"], r["c_out"] // grp, r["kh"], r["kw"])
                b = rnd(r["c_out"])
                fwd = lambda x, w, b: F.conv_transpose2d(x, w, b, stride=s, padding=p, dilation=d, groups=grp)
                args = [x, w, b]
            elif r["op"] == "deform_conv2d":
                w = rnd(r["c_out"], r["c_in"] // grp, r["kh"], r["kw"])
                b = rnd(r["c_out"])
                ho = (r["h"] + 2 * p - d * (r["kh"] - 1) - 1) // s + 1
                wo = (r["w"] + 2 * p - d * (r["kw"] - 1) - 1) // s + 1
                off = rnd(r["n"], 2 * r["kh"] * r["kw"], ho, wo) * 2
                m = rnd(r["n"], r["kh"] * r["kw"], ho, wo) * 0.5 + 0.5
                fwd = lambda x, w, b, off, m: torchvision.ops.deform_conv2d(
                    x, off, w, b, stride=s, padding=p, dilation=d, mask=m)
                args = [x, w, b, off, m]
            else:
                continue
            with torch.no_grad():
                ms = timed(lambda: fwd(*args))
            results.append({"id": r["id"], "op": r["op"], "pass": "forward", "dtype": name, "median_ms": ms})
            if dtype == torch.float32:
                leaves = [t.detach().requires_grad_() for t in args]
                y = fwd(*leaves)
                dy = torch.rand_like(y)
                ms = timed(lambda: torch.autograd.grad(fwd(*leaves), leaves, dy))
                results.append({"id": r["id"], "op": r["op"], "pass": "backward+forward", "dtype": name, "median_ms": ms})
            print(f"{r['id']:12} {name}: {results[-1]['median_ms']:.3f} ms", flush=True)
    info = {"torch": torch.__version__, "cudnn": torch.backends.cudnn.version() if cuda else None,
            "device": torch.cuda.get_device_name(0) if cuda else "cpu", "allow_tf32": False,
            "date_unix": int(time.time()), "results": results}
    json.dump(info, open(a.json, "w"), indent=1)
    with open(a.csv, "w", newline="") as f:
        wr = csv.DictWriter(f, fieldnames=["id", "op", "pass", "dtype", "median_ms"])
        wr.writeheader()
        wr.writerows(results)


if __name__ == "__main__":
    main()

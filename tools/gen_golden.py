#!/usr/bin/env python3
"""Writes PyTorch golden cases for wgconv's tests under tests/data/.

Each case is a folder of .npy files (inputs float32, expected output float64 computed by
torch in float64 from the stored float32 inputs) plus an entry in tests/data/<op>/cases.json
with the parameters. CI does not run this; it needs torch:

    python3 -m venv /opt/torchvenv && /opt/torchvenv/bin/pip install torch numpy
    /opt/torchvenv/bin/python tools/gen_golden.py [deform_conv2d_backward | pool2d_backward | conv3d_backward | conv_transpose1d | conv_transpose3d |
    padding_mode | cnn_forward]
"""
import json
import os

import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data")


def conv2d_case(name, n, cin, h, w, cout, kh, kw, stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1), groups=1, bias=True, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(n, cin, h, w, generator=g) * 2 - 1).float()
    wt = (torch.rand(cout, cin // groups, kh, kw, generator=g) * 2 - 1).float()
    b = (torch.rand(cout, generator=g) * 2 - 1).float() if bias else None
    xd, wd = x.double(), wt.double()
    bd = b.double() if b is not None else None
    if isinstance(padding, str):
        y = F.conv2d(xd, wd, bd, stride=stride, padding=padding, dilation=dilation, groups=groups)
    else:
        t, l, bo, r = padding
        y = F.conv2d(F.pad(xd, (l, r, t, bo)), wd, bd, stride=stride, padding=0, dilation=dilation, groups=groups)
    d = os.path.join(ROOT, "conv2d", name)
    os.makedirs(d, exist_ok=True)
    np.save(os.path.join(d, "input.npy"), x.numpy())
    np.save(os.path.join(d, "weight.npy"), wt.numpy())
    if b is not None:
        np.save(os.path.join(d, "bias.npy"), b.numpy())
    np.save(os.path.join(d, "output.npy"), y.numpy())
    return {
        "name": name,
        "stride": list(stride),
        "padding": padding if isinstance(padding, str) else list(padding),
        "dilation": list(dilation),
        "groups": groups,
        "bias": bias,
        "output_shape": list(y.shape),
    }


def conv_transpose2d_case(name, n, cin, h, w, cout, kh, kw, stride=(1, 1), padding=(0, 0, 0, 0), output_padding=(0, 0), dilation=(1, 1), groups=1, bias=True, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(n, cin, h, w, generator=g) * 2 - 1).float()
    wt = (torch.rand(cin, cout // groups, kh, kw, generator=g) * 2 - 1).float()
    b = (torch.rand(cout, generator=g) * 2 - 1).float() if bias else None
    t, l, bo, r = padding
    # Asymmetric padding crops the full output; PyTorch takes one value per axis, so compute
    # with zero padding and crop (output_padding extends the bottom/right before the crop).
    y = F.conv_transpose2d(x.double(), wt.double(), b.double() if b is not None else None, stride=stride, padding=0,
                           output_padding=output_padding, dilation=dilation, groups=groups)
    y = y[:, :, t:y.shape[2] - bo, l:y.shape[3] - r]
    d = os.path.join(ROOT, "conv_transpose2d", name)
    os.makedirs(d, exist_ok=True)
    np.save(os.path.join(d, "input.npy"), x.numpy())
    np.save(os.path.join(d, "weight.npy"), wt.numpy())
    if b is not None:
        np.save(os.path.join(d, "bias.npy"), b.numpy())
    np.save(os.path.join(d, "output.npy"), y.contiguous().numpy())
    return {"name": name, "stride": list(stride), "padding": list(padding), "output_padding": list(output_padding),
            "dilation": list(dilation), "groups": groups, "bias": bias, "output_shape": list(y.shape)}


def conv2d_backward_case(name, n, cin, h, w, cout, kh, kw, stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1), groups=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(n, cin, h, w, generator=g) * 2 - 1).float()
    wt = (torch.rand(cout, cin // groups, kh, kw, generator=g) * 2 - 1).float()
    b = (torch.rand(cout, generator=g) * 2 - 1).float()
    t, l, bo, r = padding
    xd = x.double().requires_grad_()
    wd = wt.double().requires_grad_()
    bd = b.double().requires_grad_()
    y = F.conv2d(F.pad(xd, (l, r, t, bo)), wd, bd, stride=stride, dilation=dilation, groups=groups)
    dy = (torch.rand(y.shape, generator=g) * 2 - 1).float()
    y.backward(dy.double())
    d = os.path.join(ROOT, "conv2d_backward", name)
    os.makedirs(d, exist_ok=True)
    for fname, arr in [("input", x), ("weight", wt), ("grad_output", dy), ("grad_input", xd.grad), ("grad_weight", wd.grad), ("grad_bias", bd.grad)]:
        np.save(os.path.join(d, fname + ".npy"), arr.detach().numpy())
    return {"name": name, "stride": list(stride), "padding": list(padding), "dilation": list(dilation), "groups": groups}


def deform_conv2d_case(name, n, cin, h, w, cout, kh, kw, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1,
                       offset_groups=1, mask=True, bias=True, scale=2.0, integer=False, seed=0):
    import torchvision
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(n, cin, h, w, generator=g) * 2 - 1).float()
    wt = (torch.rand(cout, cin // groups, kh, kw, generator=g) * 2 - 1).float()
    b = (torch.rand(cout, generator=g) * 2 - 1).float() if bias else None
    ho = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (w + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    off = (torch.rand(n, 2 * offset_groups * kh * kw, ho, wo, generator=g) * 2 - 1) * scale
    if integer:
        off = off.round()
    off = off.float()
    m = torch.rand(n, offset_groups * kh * kw, ho, wo, generator=g).float() if mask else None
    y = torchvision.ops.deform_conv2d(x.double(), off.double(), wt.double(), b.double() if b is not None else None,
                                      stride=stride, padding=padding, dilation=dilation,
                                      mask=m.double() if m is not None else None)
    d = os.path.join(ROOT, "deform_conv2d", name)
    os.makedirs(d, exist_ok=True)
    for fname, arr in [("input", x), ("weight", wt), ("offset", off), ("bias", b), ("mask", m), ("output", y)]:
        if arr is not None:
            np.save(os.path.join(d, fname + ".npy"), arr.numpy())
    return {"name": name, "stride": list(stride), "padding": [padding[0], padding[1], padding[0], padding[1]],
            "dilation": list(dilation), "groups": groups, "bias": bias, "mask": mask}


def deform_conv2d_backward_case(name, n, cin, h, w, cout, kh, kw, stride=(1, 1), padding=(0, 0), dilation=(1, 1),
                                groups=1, offset_groups=1, mask=True, scale=2.0, seed=0):
    """torchvision.ops.deform_conv2d under autograd in float64 on float32 inputs: every gradient."""
    import torchvision
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(n, cin, h, w, generator=g) * 2 - 1).float()
    wt = (torch.rand(cout, cin // groups, kh, kw, generator=g) * 2 - 1).float()
    b = (torch.rand(cout, generator=g) * 2 - 1).float()
    ho = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (w + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    off = ((torch.rand(n, 2 * offset_groups * kh * kw, ho, wo, generator=g) * 2 - 1) * scale).float()
    m = torch.rand(n, offset_groups * kh * kw, ho, wo, generator=g).float() if mask else None
    leaves = [t.double().requires_grad_() if t is not None else None for t in (x, off, wt, m, b)]
    xd, od, wd, md, bd = leaves
    y = torchvision.ops.deform_conv2d(xd, od, wd, bd, stride=stride, padding=padding, dilation=dilation, mask=md)
    dy = (torch.rand(y.shape, generator=g) * 2 - 1).float()
    y.backward(dy.double())
    d = os.path.join(ROOT, "deform_conv2d_backward", name)
    os.makedirs(d, exist_ok=True)
    arrays = [("input", x), ("weight", wt), ("offset", off), ("mask", m), ("grad_output", dy),
              ("grad_input", xd.grad), ("grad_weight", wd.grad), ("grad_offset", od.grad), ("grad_bias", bd.grad)]
    if mask:
        arrays.append(("grad_mask", md.grad))
    for fname, arr in arrays:
        if arr is not None:
            np.save(os.path.join(d, fname + ".npy"), arr.detach().numpy())
    return {"name": name, "stride": list(stride), "padding": [padding[0], padding[1], padding[0], padding[1]],
            "dilation": list(dilation), "groups": groups, "mask": mask}


def write_deform_conv2d_backward():
    cases = [
        deform_conv2d_backward_case("v2_basic", 2, 4, 7, 6, 3, 3, 3, padding=(1, 1)),
        deform_conv2d_backward_case("v1_stride2", 1, 3, 9, 8, 4, 3, 3, stride=(2, 2), padding=(1, 1), mask=False, seed=1),
        deform_conv2d_backward_case("groups2_offset_groups2_dil2", 1, 4, 9, 9, 6, 3, 3, padding=(2, 2), dilation=(2, 2),
                                    groups=2, offset_groups=2, seed=2),
        deform_conv2d_backward_case("far_offsets", 1, 2, 6, 7, 2, 3, 2, padding=(1, 0), offset_groups=2, scale=5.0, seed=3),
    ]
    with open(os.path.join(ROOT, "deform_conv2d_backward", "cases.json"), "w") as f:
        json.dump({"generator": f"torch {torch.__version__}", "cases": cases}, f, indent=1)
    print(f"wrote {len(cases)} deform_conv2d_backward cases")


def pool2d_backward_case(name, mode, n, c, h, w, kernel, stride=None, padding=(0, 0), count_include_pad=True,
                         halves=False, nan_at=None, dilation=(1, 1), ceil_mode=False, divisor_override=None,
                         adaptive=None, seed=0):
    """max_pool2d / avg_pool2d under autograd (float32, PyTorch's CPU kernels) and its grad_input."""
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(n, c, h, w, generator=g) * 2 - 1).float()
    if halves:
        x = (x * 2).round() / 2
    for at in nan_at or []:
        x[at] = float("nan")
    xg = x.clone().requires_grad_()
    if adaptive is not None:
        pool = F.adaptive_max_pool2d if mode == "max" else F.adaptive_avg_pool2d
        y = pool(xg, adaptive)
    elif mode == "max":
        y = F.max_pool2d(xg, kernel, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode)
    else:
        y = F.avg_pool2d(xg, kernel, stride=stride, padding=padding, count_include_pad=count_include_pad,
                         ceil_mode=ceil_mode, divisor_override=divisor_override)
    dy = (torch.rand(y.shape, generator=g) * 2 - 1).float()
    y.backward(dy)
    d = os.path.join(ROOT, "pool2d_backward", name)
    os.makedirs(d, exist_ok=True)
    for fname, arr in [("input", x), ("output", y), ("grad_output", dy), ("grad_input", xg.grad)]:
        np.save(os.path.join(d, fname + ".npy"), arr.detach().numpy())
    if mode == "max":
        # return_indices=True: each window's flat in-plane index, int64 as PyTorch returns it
        if adaptive is not None:
            _, idx = F.adaptive_max_pool2d(x, adaptive, return_indices=True)
        else:
            _, idx = F.max_pool2d(x, kernel, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode,
                                  return_indices=True)
        np.save(os.path.join(d, "indices.npy"), idx.numpy())
    st = list(stride) if stride is not None else list(kernel)
    return {"name": name, "mode": mode, "kernel": list(kernel), "stride": st, "padding": list(padding),
            "count_include_pad": count_include_pad, "dilation": list(dilation), "ceil_mode": ceil_mode,
            "divisor_override": divisor_override, "adaptive": list(adaptive) if adaptive else None}


def write_pool2d_backward():
    cases = [
        pool2d_backward_case("max_k3_s2_p1", "max", 2, 3, 9, 8, (3, 3), (2, 2), (1, 1)),
        pool2d_backward_case("max_overlapping_ties", "max", 1, 2, 7, 7, (3, 3), (1, 1), (1, 1), halves=True, seed=1),
        pool2d_backward_case("max_nan", "max", 1, 1, 6, 6, (3, 3), (1, 1), nan_at=[(0, 0, 2, 2), (0, 0, 3, 3)], seed=2),
        pool2d_backward_case("max_nonsquare", "max", 1, 2, 10, 9, (2, 3), (1, 2), (1, 1), seed=3),
        pool2d_backward_case("avg_k3_s2_p1", "avg", 2, 3, 9, 8, (3, 3), (2, 2), (1, 1), seed=4),
        pool2d_backward_case("avg_exclude_pad", "avg", 1, 2, 7, 6, (3, 2), (2, 1), (1, 1), count_include_pad=False, seed=5),
        pool2d_backward_case("avg_global", "avg", 2, 4, 7, 7, (7, 7), seed=6),
        pool2d_backward_case("max_dilation2_pad1", "max", 1, 2, 11, 10, (3, 3), (2, 1), (1, 1), dilation=(2, 2), seed=7),
        pool2d_backward_case("max_ceil_mode", "max", 2, 2, 8, 9, (3, 2), (2, 2), (1, 1), ceil_mode=True, seed=8),
        pool2d_backward_case("max_ceil_dilated_ties", "max", 1, 3, 9, 9, (2, 3), (2, 2), (1, 1), dilation=(3, 2),
                             ceil_mode=True, halves=True, seed=9),
        pool2d_backward_case("avg_ceil_mode_pad", "avg", 1, 2, 8, 7, (3, 3), (2, 2), (1, 1), ceil_mode=True, seed=10),
        pool2d_backward_case("avg_ceil_exclude_pad", "avg", 2, 2, 9, 8, (3, 2), (2, 2), (1, 1), ceil_mode=True,
                             count_include_pad=False, seed=11),
        pool2d_backward_case("avg_divisor_override", "avg", 1, 3, 7, 7, (3, 3), (2, 2), (1, 1), divisor_override=5,
                             ceil_mode=True, seed=12),
        pool2d_backward_case("adaptive_avg_7x10_to_3x4", "avg", 2, 2, 7, 10, (1, 1), adaptive=(3, 4), seed=13),
        pool2d_backward_case("adaptive_max_9x5_to_4x3", "max", 1, 3, 9, 5, (1, 1), adaptive=(4, 3), seed=14),
        pool2d_backward_case("adaptive_avg_up_3x4_to_5x7", "avg", 1, 2, 3, 4, (1, 1), adaptive=(5, 7), seed=15),
        pool2d_backward_case("adaptive_max_global_ties", "max", 2, 2, 6, 6, (1, 1), adaptive=(1, 1), halves=True, seed=16),
    ]
    with open(os.path.join(ROOT, "pool2d_backward", "cases.json"), "w") as f:
        json.dump({"generator": f"torch {torch.__version__}", "cases": cases}, f, indent=1)
    print(f"wrote {len(cases)} pool2d_backward cases")


def conv3d_backward_case(name, n, cin, dhw, cout, k, stride=1, padding=0, dilation=1, groups=1, seed=0):
    """F.conv3d under autograd in float64 on float32 inputs: grad_input, grad_weight, grad_bias."""
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(n, cin, *dhw, generator=g) * 2 - 1).float()
    wt = (torch.rand(cout, cin // groups, *k, generator=g) * 2 - 1).float()
    b = (torch.rand(cout, generator=g) * 2 - 1).float()
    xd, wd, bd = (t.double().requires_grad_() for t in (x, wt, b))
    y = F.conv3d(xd, wd, bd, stride=stride, padding=padding, dilation=dilation, groups=groups)
    dy = (torch.rand(y.shape, generator=g) * 2 - 1).float()
    y.backward(dy.double())
    d = os.path.join(ROOT, "conv3d_backward", name)
    os.makedirs(d, exist_ok=True)
    for fname, arr in [("input", x), ("weight", wt), ("grad_output", dy), ("grad_input", xd.grad),
                       ("grad_weight", wd.grad), ("grad_bias", bd.grad)]:
        np.save(os.path.join(d, fname + ".npy"), arr.detach().numpy())
    triple = lambda v: list(v) if isinstance(v, (tuple, list)) else [v, v, v]
    return {"name": name, "stride": triple(stride), "padding": padding if isinstance(padding, str) else triple(padding),
            "dilation": triple(dilation), "groups": groups}


def write_conv3d_backward():
    cases = [
        conv3d_backward_case("basic_pad1", 2, 2, (5, 6, 6), 3, (3, 3, 3), padding=1),
        conv3d_backward_case("stride_dil_nonsquare", 1, 3, (7, 6, 8), 2, (3, 2, 3), stride=(2, 1, 2), padding=(1, 0, 1),
                             dilation=(1, 2, 1), seed=1),
        conv3d_backward_case("groups2_unreached", 1, 4, (6, 7, 5), 4, (2, 3, 2), stride=(2, 3, 2), groups=2, seed=2),
        conv3d_backward_case("pointwise", 3, 5, (3, 4, 5), 2, (1, 1, 1), seed=3),
    ]
    with open(os.path.join(ROOT, "conv3d_backward", "cases.json"), "w") as f:
        json.dump({"generator": f"torch {torch.__version__}", "cases": cases}, f, indent=1)
    print(f"wrote {len(cases)} conv3d_backward cases")


def conv_transpose_nd_case(op, name, n, cin, size, cout, k, stride=1, padding=0, output_padding=0, dilation=1, groups=1,
                           seed=0):
    """F.conv_transpose1d/3d under autograd in float64 on float32 inputs: the output (with bias)
    and grad_input, grad_weight, grad_bias for a random grad_output."""
    fn = {"conv_transpose1d": F.conv_transpose1d, "conv_transpose3d": F.conv_transpose3d}[op]
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(n, cin, *size, generator=g) * 2 - 1).float()
    wt = (torch.rand(cin, cout // groups, *k, generator=g) * 2 - 1).float()
    b = (torch.rand(cout, generator=g) * 2 - 1).float()
    xd, wd, bd = (t.double().requires_grad_() for t in (x, wt, b))
    y = fn(xd, wd, bd, stride=stride, padding=padding, output_padding=output_padding, groups=groups,
           dilation=dilation)
    dy = (torch.rand(y.shape, generator=g) * 2 - 1).float()
    y.backward(dy.double())
    d = os.path.join(ROOT, op, name)
    os.makedirs(d, exist_ok=True)
    for fname, arr in [("input", x), ("weight", wt), ("bias", b), ("output", y), ("grad_output", dy),
                       ("grad_input", xd.grad), ("grad_weight", wd.grad), ("grad_bias", bd.grad)]:
        np.save(os.path.join(d, fname + ".npy"), arr.detach().numpy())
    rank = len(size)
    each = lambda v: list(v) if isinstance(v, (tuple, list)) else [v] * rank
    return {"name": name, "stride": each(stride), "padding": each(padding), "output_padding": each(output_padding),
            "dilation": each(dilation), "groups": groups, "output_shape": list(y.shape)}


def write_conv_transpose1d():
    op = "conv_transpose1d"
    cases = [
        conv_transpose_nd_case(op, "basic", 2, 3, (9,), 4, (3,)),
        conv_transpose_nd_case(op, "stride2_pad_outpad", 1, 4, (7,), 6, (4,), stride=2, padding=1, output_padding=1,
                               seed=1),
        conv_transpose_nd_case(op, "dilated_groups", 2, 4, (6,), 2, (3,), stride=3, padding=2, dilation=2, groups=2,
                               seed=2),
        conv_transpose_nd_case(op, "depthwise", 1, 5, (8,), 10, (5,), stride=2, padding=2, output_padding=1,
                               groups=5, seed=3),
    ]
    with open(os.path.join(ROOT, op, "cases.json"), "w") as f:
        json.dump({"generator": f"torch {torch.__version__}", "cases": cases}, f, indent=1)
    print(f"wrote {len(cases)} {op} cases")


def write_conv_transpose3d():
    op = "conv_transpose3d"
    cases = [
        conv_transpose_nd_case(op, "basic", 2, 2, (3, 4, 4), 3, (3, 3, 3), padding=1),
        conv_transpose_nd_case(op, "stride_outpad_nonsquare", 1, 3, (3, 4, 2), 2, (2, 3, 3), stride=(2, 1, 2),
                               padding=(0, 1, 1), output_padding=(1, 0, 1), seed=1),
        conv_transpose_nd_case(op, "dilated_groups", 1, 4, (2, 3, 3), 4, (2, 2, 3), stride=(1, 2, 3),
                               dilation=(2, 1, 2), groups=2, padding=(1, 0, 2), seed=2),
        conv_transpose_nd_case(op, "pointwise", 3, 5, (2, 3, 4), 2, (1, 1, 1), seed=3),
    ]
    with open(os.path.join(ROOT, op, "cases.json"), "w") as f:
        json.dump({"generator": f"torch {torch.__version__}", "cases": cases}, f, indent=1)
    print(f"wrote {len(cases)} {op} cases")


def padding_mode_case(name, op, mode, n, cin, size, cout, k, stride=1, padding=1, dilation=1, groups=1, seed=0):
    """nn.Conv1d/2d/3d with padding_mode (reflect, replicate, circular): the module's own
    forward in float64 on the stored float32 inputs (its weight and bias replaced by ours), and
    its autograd for a random grad_output."""
    cls = {"conv1d": torch.nn.Conv1d, "conv2d": torch.nn.Conv2d, "conv3d": torch.nn.Conv3d}[op]
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(n, cin, *size, generator=g) * 2 - 1).float()
    wt = (torch.rand(cout, cin // groups, *k, generator=g) * 2 - 1).float()
    b = (torch.rand(cout, generator=g) * 2 - 1).float()
    m = cls(cin, cout, k, stride=stride, padding=padding, dilation=dilation, groups=groups, padding_mode=mode).double()
    with torch.no_grad():
        m.weight.copy_(wt.double())
        m.bias.copy_(b.double())
    xd = x.double().requires_grad_()
    y = m(xd)
    dy = (torch.rand(y.shape, generator=g) * 2 - 1).float()
    y.backward(dy.double())
    d = os.path.join(ROOT, "padding_mode", name)
    os.makedirs(d, exist_ok=True)
    for fname, arr in [("input", x), ("weight", wt), ("bias", b), ("output", y), ("grad_output", dy),
                       ("grad_input", xd.grad), ("grad_weight", m.weight.grad), ("grad_bias", m.bias.grad)]:
        np.save(os.path.join(d, fname + ".npy"), arr.detach().numpy())
    rank = len(size)
    each = lambda v: list(v) if isinstance(v, (tuple, list)) else [v] * rank
    return {"name": name, "op": op, "padding_mode": mode, "stride": each(stride),
            "padding": padding if isinstance(padding, str) else each(padding), "dilation": each(dilation),
            "groups": groups, "output_shape": list(y.shape)}


def write_padding_mode():
    cases = [
        padding_mode_case("conv2d_reflect", "conv2d", "reflect", 2, 3, (6, 7), 4, (3, 3)),
        padding_mode_case("conv2d_replicate_stride2", "conv2d", "replicate", 1, 4, (7, 6), 2, (3, 2), stride=2,
                          padding=(2, 1), groups=2, seed=1),
        padding_mode_case("conv2d_circular_dilated", "conv2d", "circular", 1, 2, (5, 6), 3, (3, 3), padding=2,
                          dilation=2, seed=2),
        padding_mode_case("conv2d_reflect_same", "conv2d", "reflect", 1, 3, (5, 5), 2, (4, 3), padding="same",
                          seed=3),
        padding_mode_case("conv1d_reflect", "conv1d", "reflect", 2, 3, (9,), 4, (5,), padding=2, seed=4),
        padding_mode_case("conv1d_circular", "conv1d", "circular", 1, 2, (6,), 2, (3,), padding=3, stride=2, seed=5),
        padding_mode_case("conv3d_replicate", "conv3d", "replicate", 1, 2, (4, 5, 4), 3, (3, 3, 3), seed=6),
        padding_mode_case("conv3d_reflect", "conv3d", "reflect", 1, 2, (3, 4, 5), 2, (2, 3, 3), padding=(1, 2, 1),
                          seed=7),
        padding_mode_case("conv3d_circular", "conv3d", "circular", 2, 1, (3, 3, 4), 2, (3, 2, 3), stride=(1, 2, 1),
                          seed=8),
    ]
    with open(os.path.join(ROOT, "padding_mode", "cases.json"), "w") as f:
        json.dump({"generator": f"torch {torch.__version__}", "cases": cases}, f, indent=1)
    print(f"wrote {len(cases)} padding_mode cases")


def write_cnn_forward():
    """A small MobileNetV2-like network (examples/cnn_forward.rs): torch's own modules with
    seeded weights and batch-norm statistics, run in eval mode in float64; each conv's
    batch norm folded into its weight and bias (w·γ/σ, (b − μ)·γ/σ + β) and saved in
    model.npz as <layer>.weight / <layer>.bias, with the input and the logits."""
    torch.manual_seed(0)
    nn = torch.nn

    def cbr(cin, cout, k, stride=1, groups=1, act=True):
        layers = [nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
        if act:
            layers.append(nn.ReLU6())
        return nn.Sequential(*layers)

    # (name, module, residual from the block's input)
    spec = [
        ("stem", cbr(3, 16, 3, stride=2)),
        ("b1_dw", cbr(16, 16, 3, groups=16)), ("b1_pw", cbr(16, 8, 1, act=False)),
        ("b2_expand", cbr(8, 48, 1)), ("b2_dw", cbr(48, 48, 3, stride=2, groups=48)), ("b2_pw", cbr(48, 16, 1, act=False)),
        ("b3_expand", cbr(16, 96, 1)), ("b3_dw", cbr(96, 96, 3, groups=96)), ("b3_pw", cbr(96, 16, 1, act=False)),
        ("head", cbr(16, 64, 1)),
    ]
    for _, m in spec:
        bn = m[1]
        with torch.no_grad():
            bn.running_mean.uniform_(-0.2, 0.2)
            bn.running_var.uniform_(0.5, 1.5)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.2, 0.2)
        m.eval().double()
    classifier = nn.Conv2d(64, 10, 1).double().eval()
    x = torch.rand(1, 3, 96, 96, dtype=torch.float64).float()
    arrays = {}
    with torch.no_grad():
        h = x.double()
        for name, m in spec:
            y = m(h)
            if name == "b3_pw":
                y = y + h_b3_in  # the inverted residual of block 3 (same shape in and out)
            if name == "b3_expand":
                h_b3_in = h
            h = y
            conv, bn = m[0], m[1]
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            arrays[name + ".weight"] = (conv.weight * scale[:, None, None, None]).float().numpy()
            arrays[name + ".bias"] = (bn.bias - bn.running_mean * scale).float().numpy()
        pooled = F.adaptive_avg_pool2d(h, 1)
        logits = classifier(pooled)
        arrays["classifier.weight"] = classifier.weight.float().numpy()
        arrays["classifier.bias"] = classifier.bias.float().numpy()
    d = os.path.join(ROOT, "cnn_forward")
    os.makedirs(d, exist_ok=True)
    np.savez(os.path.join(d, "model.npz"), **arrays)
    np.save(os.path.join(d, "input.npy"), x.numpy())
    np.save(os.path.join(d, "logits.npy"), logits.numpy())
    print(f"wrote cnn_forward: {len(arrays)} arrays, logits {tuple(logits.shape)}")


def conv1d_case(name, n, cin, l, cout, k, stride=1, padding=0, dilation=1, groups=1, bias=True, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(n, cin, l, generator=g) * 2 - 1).float()
    wt = (torch.rand(cout, cin // groups, k, generator=g) * 2 - 1).float()
    b = (torch.rand(cout, generator=g) * 2 - 1).float() if bias else None
    y = F.conv1d(x.double(), wt.double(), b.double() if b is not None else None, stride=stride, padding=padding,
                 dilation=dilation, groups=groups)
    d = os.path.join(ROOT, "conv1d", name)
    os.makedirs(d, exist_ok=True)
    for fname, arr in [("input", x), ("weight", wt), ("bias", b), ("output", y)]:
        if arr is not None:
            np.save(os.path.join(d, fname + ".npy"), arr.numpy())
    return {"name": name, "stride": stride, "padding": padding, "dilation": dilation, "groups": groups, "bias": bias}


def pool2d_case(name, n, c, h, w, kernel, stride=None, padding=(0, 0), count_include_pad=True, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(n, c, h, w, generator=g) * 2 - 1).float()
    ymax = F.max_pool2d(x.double(), kernel, stride=stride, padding=padding)
    yavg = F.avg_pool2d(x.double(), kernel, stride=stride, padding=padding, count_include_pad=count_include_pad)
    d = os.path.join(ROOT, "pool2d", name)
    os.makedirs(d, exist_ok=True)
    for fname, arr in [("input", x), ("max", ymax), ("avg", yavg)]:
        np.save(os.path.join(d, fname + ".npy"), arr.numpy())
    return {"name": name, "kernel": list(kernel), "stride": list(stride) if stride else None, "padding": list(padding),
            "count_include_pad": count_include_pad}


def conv3d_case(name, n, cin, dhw, cout, k, stride=1, padding=0, dilation=1, groups=1, bias=True, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(n, cin, *dhw, generator=g) * 2 - 1).float()
    wt = (torch.rand(cout, cin // groups, *k, generator=g) * 2 - 1).float()
    b = (torch.rand(cout, generator=g) * 2 - 1).float() if bias else None
    y = F.conv3d(x.double(), wt.double(), b.double() if b is not None else None, stride=stride, padding=padding,
                 dilation=dilation, groups=groups)
    d = os.path.join(ROOT, "conv3d", name)
    os.makedirs(d, exist_ok=True)
    for fname, arr in [("input", x), ("weight", wt), ("bias", b), ("output", y)]:
        if arr is not None:
            np.save(os.path.join(d, fname + ".npy"), arr.numpy())
    pad = padding if isinstance(padding, str) else list(padding if isinstance(padding, tuple) else (padding,) * 3)
    st = list(stride if isinstance(stride, tuple) else (stride,) * 3)
    dl = list(dilation if isinstance(dilation, tuple) else (dilation,) * 3)
    return {"name": name, "stride": st, "padding": pad, "dilation": dl, "groups": groups, "bias": bias}


def check_crop_equals_padding():
    # The crop above is what padding does: compare with PyTorch's own symmetric padding.
    g = torch.Generator().manual_seed(1)
    x = torch.rand(1, 3, 5, 5, generator=g).double()
    w = torch.rand(3, 2, 3, 3, generator=g).double()
    a = F.conv_transpose2d(x, w, stride=2, padding=1, output_padding=1)
    b = F.conv_transpose2d(x, w, stride=2, padding=0, output_padding=1)[:, :, 1:-1, 1:-1]
    assert torch.allclose(a, b)


def main():
    torch.manual_seed(0)
    cases = [
        conv2d_case("basic_3x3_pad1", 1, 3, 9, 9, 4, 3, 3, padding=(1, 1, 1, 1)),
        conv2d_case("stride2_dil2_asym_pad", 2, 5, 13, 11, 6, 3, 3, stride=(2, 2), padding=(2, 1, 0, 3), dilation=(2, 2), seed=1),
        conv2d_case("nonsquare_kernel_stride_2_3", 1, 4, 10, 17, 3, 2, 5, stride=(2, 3), padding=(1, 2, 1, 2), bias=False, seed=2),
        conv2d_case("groups2", 2, 6, 8, 7, 4, 3, 3, padding=(1, 1, 1, 1), groups=2, seed=3),
        conv2d_case("depthwise_multiplier2", 1, 5, 9, 8, 10, 3, 3, stride=(2, 2), padding=(1, 1, 1, 1), groups=5, seed=4),
        conv2d_case("same_even_kernel", 1, 3, 7, 6, 2, 4, 2, padding="same", dilation=(1, 2), seed=5),
        conv2d_case("valid_7x7_stem_like", 1, 3, 23, 23, 8, 7, 7, stride=(2, 2), padding=(3, 3, 3, 3), seed=6),
        conv2d_case("pointwise_1x1", 3, 16, 5, 5, 8, 1, 1, seed=7),
        conv2d_case("kernel_larger_than_input", 1, 2, 3, 3, 3, 5, 5, padding=(2, 2, 2, 2), seed=8),
        conv2d_case("resnet_block_small", 1, 32, 14, 14, 32, 3, 3, padding=(1, 1, 1, 1), seed=9),
    ]
    with open(os.path.join(ROOT, "conv2d", "cases.json"), "w") as f:
        json.dump({"generator": f"torch {torch.__version__}", "cases": cases}, f, indent=1)
    print(f"wrote {len(cases)} conv2d cases with torch {torch.__version__}")

    check_crop_equals_padding()
    tcases = [
        conv_transpose2d_case("dcgan_like_s2_k4_p1", 1, 8, 5, 5, 4, 4, 4, stride=(2, 2), padding=(1, 1, 1, 1)),
        conv_transpose2d_case("s3_output_padding", 2, 3, 4, 5, 5, 3, 3, stride=(3, 3), output_padding=(2, 1), seed=1),
        conv_transpose2d_case("dilation_groups", 1, 4, 5, 6, 6, 3, 2, stride=(2, 1), padding=(1, 0, 1, 0), output_padding=(1, 0), dilation=(2, 2), groups=2, seed=2),
        conv_transpose2d_case("depthwise", 1, 6, 6, 6, 6, 3, 3, stride=(2, 2), padding=(1, 1, 1, 1), output_padding=(1, 1), groups=6, bias=False, seed=3),
        conv_transpose2d_case("asymmetric_padding", 1, 3, 5, 4, 2, 3, 3, stride=(2, 2), padding=(2, 0, 1, 3), seed=4),
        conv_transpose2d_case("pointwise_n3", 3, 5, 4, 4, 7, 1, 1, seed=5),
    ]
    with open(os.path.join(ROOT, "conv_transpose2d", "cases.json"), "w") as f:
        json.dump({"generator": f"torch {torch.__version__}", "cases": tcases}, f, indent=1)
    print(f"wrote {len(tcases)} conv_transpose2d cases")

    bcases = [
        conv2d_backward_case("basic_3x3_pad1", 2, 3, 6, 5, 4, 3, 3, padding=(1, 1, 1, 1)),
        conv2d_backward_case("stride2_unreached_rows", 1, 3, 8, 7, 2, 3, 3, stride=(2, 2), seed=1),
        conv2d_backward_case("stride3_dil2_asym", 2, 4, 11, 9, 3, 3, 2, stride=(3, 2), padding=(2, 0, 1, 1), dilation=(2, 2), seed=2),
        conv2d_backward_case("groups2", 1, 4, 6, 6, 6, 3, 3, padding=(1, 1, 1, 1), groups=2, seed=3),
        conv2d_backward_case("depthwise_mult2", 2, 3, 7, 7, 6, 3, 3, stride=(2, 2), padding=(1, 1, 1, 1), groups=3, seed=4),
        conv2d_backward_case("pointwise", 1, 8, 5, 5, 4, 1, 1, seed=5),
    ]
    with open(os.path.join(ROOT, "conv2d_backward", "cases.json"), "w") as f:
        json.dump({"generator": f"torch {torch.__version__}", "cases": bcases}, f, indent=1)
    print(f"wrote {len(bcases)} conv2d_backward cases")

    dcases = [
        deform_conv2d_case("v2_basic", 1, 4, 7, 6, 3, 3, 3, padding=(1, 1)),
        deform_conv2d_case("v1_no_mask", 2, 3, 6, 6, 2, 3, 3, padding=(1, 1), mask=False, seed=1),
        deform_conv2d_case("offset_groups2_groups2", 1, 4, 8, 7, 6, 3, 3, padding=(1, 1), groups=2, offset_groups=2, seed=2),
        deform_conv2d_case("stride2_dil2_far_offsets", 1, 4, 9, 9, 3, 3, 3, stride=(2, 2), padding=(2, 2), dilation=(2, 2), offset_groups=4, scale=6.0, seed=3),
        deform_conv2d_case("nonsquare_integer_offsets", 2, 2, 6, 8, 3, 2, 3, padding=(1, 0), integer=True, scale=3.0, bias=False, seed=4),
        deform_conv2d_case("dcn_like", 1, 8, 10, 10, 8, 3, 3, padding=(1, 1), seed=5),
    ]
    with open(os.path.join(ROOT, "deform_conv2d", "cases.json"), "w") as f:
        json.dump({"generator": f"torch {torch.__version__}", "cases": dcases}, f, indent=1)
    print(f"wrote {len(dcases)} deform_conv2d cases")

    c1 = [
        conv1d_case("basic", 1, 3, 17, 4, 3, padding=1),
        conv1d_case("stride2_dil2", 2, 4, 23, 3, 5, stride=2, padding=2, dilation=2, seed=1),
        conv1d_case("groups2", 1, 4, 11, 6, 3, groups=2, seed=2),
        conv1d_case("depthwise_same", 1, 5, 12, 5, 4, padding="same", groups=5, bias=False, seed=3),
        conv1d_case("pointwise", 3, 8, 9, 2, 1, seed=4),
    ]
    with open(os.path.join(ROOT, "conv1d", "cases.json"), "w") as f:
        json.dump({"generator": f"torch {torch.__version__}", "cases": c1}, f, indent=1)
    pc = [
        pool2d_case("k2", 1, 3, 8, 8, (2, 2)),
        pool2d_case("k3_s2_p1", 2, 2, 9, 7, (3, 3), stride=(2, 2), padding=(1, 1), seed=1),
        pool2d_case("k3_s2_p1_exclude_pad", 1, 2, 9, 7, (3, 3), stride=(2, 2), padding=(1, 1), count_include_pad=False, seed=2),
        pool2d_case("nonsquare", 1, 4, 10, 9, (2, 3), stride=(1, 2), padding=(1, 1), seed=3),
    ]
    with open(os.path.join(ROOT, "pool2d", "cases.json"), "w") as f:
        json.dump({"generator": f"torch {torch.__version__}", "cases": pc}, f, indent=1)
    print(f"wrote {len(c1)} conv1d and {len(pc)} pool2d cases")

    c3 = [
        conv3d_case("basic", 1, 2, (5, 6, 6), 3, (3, 3, 3), padding=1),
        conv3d_case("stride_dil_nonsquare", 2, 3, (7, 6, 8), 2, (3, 2, 3), stride=(2, 1, 2), padding=(1, 0, 1), dilation=(1, 2, 1), seed=1),
        conv3d_case("groups_same", 1, 4, (4, 5, 5), 4, (3, 3, 2), padding="same", groups=2, bias=False, seed=2),
    ]
    with open(os.path.join(ROOT, "conv3d", "cases.json"), "w") as f:
        json.dump({"generator": f"torch {torch.__version__}", "cases": c3}, f, indent=1)
    print(f"wrote {len(c3)} conv3d cases")
    write_deform_conv2d_backward()
    write_pool2d_backward()
    write_conv3d_backward()
    write_conv_transpose1d()
    write_conv_transpose3d()
    write_padding_mode()
    write_cnn_forward()


if __name__ == "__main__":
    import sys
    # `gen_golden.py deform_conv2d_backward`: that op's cases alone
    if sys.argv[1:] == ["deform_conv2d_backward"]:
        write_deform_conv2d_backward()
    elif sys.argv[1:] == ["pool2d_backward"]:
        write_pool2d_backward()
    elif sys.argv[1:] == ["conv3d_backward"]:
        write_conv3d_backward()
    elif sys.argv[1:] == ["conv_transpose1d"]:
        write_conv_transpose1d()
    elif sys.argv[1:] == ["conv_transpose3d"]:
        write_conv_transpose3d()
    elif sys.argv[1:] == ["padding_mode"]:
        write_padding_mode()
    elif sys.argv[1:] == ["cnn_forward"]:
        write_cnn_forward()
    else:
        main()

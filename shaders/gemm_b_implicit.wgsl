// B_IMPLICIT: B gathered from the NCHW input on the fly (implicit GEMM). The tiled read
// takes row k = (cl·kh + i)·kw + j; main_flat walks K tap-major (Tap, shared with
// B_TRANSPOSED).

// Row bk = (cl·kh + i)·kw + j of the implicit conv's B: channel cl's tap (i, j) at the four
// columns of `c`.
fn load_b_implicit(g: u32, c: Cols, bk: u32) -> vec4<f32> {
    let taps = params.conv.kh * params.conv.kw;
    let cl = bk / taps;
    let tap = bk - cl * taps;
    let i = tap / params.conv.kw;
    let j = tap - i * params.conv.kw;
    let chan = (g * (params.conv.c_in / params.dims.groups) + cl) * x_chan_stride();
    let dy = i32(i * params.conv.dil_h);
    let dx = i32(j * params.conv.dil_w);
    return vec4<f32>(gather(c.ok.x, c.base.x + chan, c.iy0.x + dy, c.ix0.x + dx),
                     gather(c.ok.y, c.base.y + chan, c.iy0.y + dy, c.ix0.y + dx),
                     gather(c.ok.z, c.base.z + chan, c.iy0.z + dy, c.ix0.z + dx),
                     gather(c.ok.w, c.base.w + chan, c.iy0.w + dy, c.ix0.w + dx));
}

// main_flat walks the K of the gathering modes B_IMPLICIT and B_TRANSPOSED tap-major: step k is channel
// cl = k mod C of tap t = k / C, C the input channels per conv group. B_IMPLICIT: t = i·kw + j
// is the kernel tap (i, j) and A's column cl·kh·kw + t (A_ROW_MAJOR). B_TRANSPOSED: t = ty·taps_x +
// tx is the phase's tap (ty, tx), kernel tap (i0y + ty·step_y, i0x + tx·step_x), and A's
// element ((c0 + cl)·M + row)·kh·kw + i·kw + j (A_PHASE_TAPS). Each column's input index and
// padding test are worked out once per tap (tap_index); each channel then adds its plane, and
// A its channel step (walk_a_step).
struct Tap {
    // (i, j) for B_IMPLICIT, (ty, tx) for B_TRANSPOSED
    i: u32,
    j: u32,
    // A's offset of this tap at channel cl = 0 (the row's own offset is in a_rows)
    a: u32,
    // false for a B_TRANSPOSED tap past the kernel, or a phase no tap reaches: contributes 0
    real: bool,
}

// Input channels per conv group (params.dims.groups counts phases × groups in B_TRANSPOSED).
fn walk_channels() -> u32 {
    if (B_MODE == B_TRANSPOSED) {
        return params.conv.c_in / (params.dims.groups / (params.conv.stride_h * params.conv.stride_w));
    }
    return params.conv.c_in / params.dims.groups;
}

// How far A's offset moves from one channel to the next.
fn walk_a_step() -> u32 {
    if (B_MODE == B_TRANSPOSED) {
        return params.dims.m * params.conv.kh * params.conv.kw;
    }
    return params.conv.kh * params.conv.kw;
}

fn tap_at(ph: Phase, i: u32, j: u32) -> Tap {
    if (B_MODE == B_TRANSPOSED) {
        let ki = ph.i0y + i * params.phases.step_y;
        let kj = ph.i0x + j * params.phases.step_x;
        let real = ph.ok && ki < params.conv.kh && kj < params.conv.kw;
        // a phantom tap reads a real weight (clamped) that is then zeroed
        let a = phase_channel0(ph.gc) * walk_a_step() + min(ki, params.conv.kh - 1u) * params.conv.kw + min(kj, params.conv.kw - 1u);
        return Tap(i, j, a, real);
    }
    return Tap(i, j, i * params.conv.kw + j, true);
}

fn next_tap(ph: Phase, p: Tap) -> Tap {
    let nx = select(params.conv.kw, params.phases.taps_x, B_MODE == B_TRANSPOSED);
    if (p.j + 1u == nx) {
        return tap_at(ph, p.i + 1u, 0u);
    }
    return tap_at(ph, p.i, p.j + 1u);
}

// Input index of tap p in channel 0 of the conv group at the four columns of `c`, or −1
// where the tap falls in the padding (or is phantom, or the column is past N).
fn tap_index(ph: Phase, c: Cols, p: Tap) -> vec4<i32> {
    var dy: i32;
    var dx: i32;
    if (B_MODE == B_TRANSPOSED) {
        dy = -i32(p.i * params.phases.dq_y);
        dx = -i32(p.j * params.phases.dq_x);
    } else {
        dy = i32(p.i * params.conv.dil_h);
        dx = i32(p.j * params.conv.dil_w);
    }
    let ok = c.ok & vec4<bool>(p.real) & (vec4<u32>(c.iy0 + dy) < vec4<u32>(params.conv.h))
                  & (vec4<u32>(c.ix0 + dx) < vec4<u32>(params.conv.w));
    let off = i32(ph.gc * walk_channels() * x_chan_stride()) + (dy * i32(params.conv.w) + dx) * i32(x_pixel_stride());
    return select(vec4<i32>(-1), c.at + off, ok);
}

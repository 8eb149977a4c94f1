// B_TRANSPOSED: conv_transpose2d by output phases (gemm.wgsl's header). A phase's taps
// (also read by A_PHASE_TAPS) and its tiled read; main_flat walks it with Tap
// (gemm_b_implicit.wgsl).

// The real output plane, the taps per phase and their steps (see gemm.wgsl's B_TRANSPOSED).
struct OutputPhases {
    out_h: u32,
    out_w: u32,
    taps_y: u32,
    taps_x: u32,
    step_y: u32,
    step_x: u32,
    dq_y: u32,
    dq_x: u32,
}


// Row k of a phase (B_TRANSPOSED / A_PHASE_TAPS) as (channel cl, tap ty, tap tx, real): the tap
// (i0y + ty·step_y, i0x + tx·step_x) is real when it lies inside the kernel. Phantom taps are
// 0 in both A and B, so they add exactly 0.
fn phase_tap(ph: Phase, k: u32) -> vec4<u32> {
    let per = params.phases.taps_y * params.phases.taps_x;
    let cl = k / per;
    let t = k - cl * per;
    let ty = t / params.phases.taps_x;
    let tx = t - ty * params.phases.taps_x;
    let ok = ph.ok && ph.i0y + ty * params.phases.step_y < params.conv.kh && ph.i0x + tx * params.phases.step_x < params.conv.kw;
    return vec4<u32>(cl, ty, tx, select(0u, 1u, ok));
}

// First input channel of conv group gc in B_TRANSPOSED (params.dims.groups counts phases × groups).
fn phase_channel0(gc: u32) -> u32 {
    return gc * (params.conv.c_in / (params.dims.groups / (params.conv.stride_h * params.conv.stride_w)));
}

// Row bk of a transposed-conv output phase (phase_tap) at the four columns of `c`.
fn load_b_transposed(ph: Phase, c: Cols, bk: u32) -> vec4<f32> {
    let g = ph.gc;
    let t = phase_tap(ph, bk);
    let ok = t.w != 0u;
    let chan = (phase_channel0(g) + t.x) * x_chan_stride();
    let dy = i32(t.y * params.phases.dq_y);
    let dx = i32(t.z * params.phases.dq_x);
    return vec4<f32>(gather(ok && c.ok.x, c.base.x + chan, c.iy0.x - dy, c.ix0.x - dx),
                     gather(ok && c.ok.y, c.base.y + chan, c.iy0.y - dy, c.ix0.y - dx),
                     gather(ok && c.ok.z, c.base.z + chan, c.iy0.z - dy, c.ix0.z - dx),
                     gather(ok && c.ok.w, c.base.w + chan, c.iy0.w - dy, c.ix0.w - dx));
}

// main_flat: main_16x16's tiles and 16×16 blocks without workgroup memory or barriers: each
// invocation reads its own 16 rows of A and 16 columns of B straight from the buffers, one k
// at a time (L1 serves the neighbours' repeats). llvmpipe runs a workgroup's SIMD groups as
// coroutines that switch at every barrier; with no barrier there is no switch, and on
// lavapipe this kernel runs the GEMMs whose B rows load as vec4 (dense, pointwise: four
// loads for 16 columns) ~1.3–1.4× faster than main_16x16 (single-threaded bench, r50_pw and
// the 1024³ GEMM). The implicit conv (B_IMPLICIT) and the transposed phases (B_TRANSPOSED) walk K
// tap-major (see Tap): each column's input index and padding test once per tap, then one
// add and one load per channel; r50_c3 runs in ~16 ms against ~21–23 ms for main_16x16.
// grad_weight's taps (B_TAPS) walk the output pixels in order (see Pix).
// Where B is sampled (deform) it recomputes per load and is not faster. On GPUs shared tiles
// win. Measured on lavapipe (Mesa 22.3): every storage-buffer load runs as a loop over the
// SIMD lanes with a bounds test per component, so cost follows loaded elements, not load
// instructions: reading A as vec4 (four k at once) was ~2× slower here, and removing three
// of the four A loads per k (wrong results, an experiment) sped r50_c3 up only ~1.4×.
@compute @workgroup_size(64, 1, 1)
fn main_flat(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let nx = wg_x();
    let lx = li % nx;
    let ly = li / nx;
    let tile = wid.x + nwg.x * (wid.y + nwg.y * wid.z);
    let o = tile_origin(tile, 16u * (64u / nx), 16u * nx);
    let ks = k_slice(tile, 16u * (64u / nx), 16u * nx);
    if (o.w == 0u) {
        return;
    }
    let ph = phase_of(o.x, ks.z);
    let m0 = o.y + 16u * ly;
    let n0 = o.z + 16u * lx;

    // acc<t><u> as in main_16x16: rows m0 + 4t .. + 3, columns n0 + 4u .. + 3.
    var acc00 = mat4x4<f32>();
    var acc01 = mat4x4<f32>();
    var acc02 = mat4x4<f32>();
    var acc03 = mat4x4<f32>();
    var acc10 = mat4x4<f32>();
    var acc11 = mat4x4<f32>();
    var acc12 = mat4x4<f32>();
    var acc13 = mat4x4<f32>();
    var acc20 = mat4x4<f32>();
    var acc21 = mat4x4<f32>();
    var acc22 = mat4x4<f32>();
    var acc23 = mat4x4<f32>();
    var acc30 = mat4x4<f32>();
    var acc31 = mat4x4<f32>();
    var acc32 = mat4x4<f32>();
    var acc33 = mat4x4<f32>();
    let c0 = columns(ph, n0);
    let c1 = columns(ph, n0 + 4u);
    let c2 = columns(ph, n0 + 8u);
    let c3 = columns(ph, n0 + 12u);
    // B_IMPLICIT and B_TRANSPOSED: K tap-major (see Tap); at<u> hold the tap's input indices of columns
    // n0 + 4u .. + 3.
    let walk = B_MODE == B_IMPLICIT || B_MODE == B_TRANSPOSED;
    let channels = walk_channels();
    let a_step = walk_a_step();
    let plane = x_chan_stride();
    var tap = tap_at(ph, 0u, 0u);
    var cl = 0u;
    var at0 = vec4<i32>(-1);
    var at1 = vec4<i32>(-1);
    var at2 = vec4<i32>(-1);
    var at3 = vec4<i32>(-1);
    let r0 = a_rows(ph, m0);
    let r1 = a_rows(ph, m0 + 4u);
    let r2 = a_rows(ph, m0 + 8u);
    let r3 = a_rows(ph, m0 + 12u);
    // This pass (KPass) or slice of a split K starts at step ks.x: the walks' state there.
    let k0 = ks.x;
    if (walk) {
        let t0 = k0 / channels;
        cl = k0 - t0 * channels;
        let per_row = select(params.conv.kw, params.phases.taps_x, B_MODE == B_TRANSPOSED);
        tap = tap_at(ph, t0 / per_row, t0 % per_row);
        at0 = tap_index(ph, c0, tap);
        at1 = tap_index(ph, c1, tap);
        at2 = tap_index(ph, c2, tap);
        at3 = tap_index(ph, c3, tap);
    }
    // B_TAPS: the pixel of step k (see Pix)
    let img0 = k0 / max(params.grad.a_hw, 1u);
    let q0 = k0 - img0 * params.grad.a_hw;
    let oy0 = q0 / max(params.conv.w_out, 1u);
    var px = pix_at(img0, oy0, q0 - oy0 * params.conv.w_out);
    let k_end = ks.y;
    for (var k = k0; k < k_end; k++) {
        var y0: vec4<f32>;
        var y1: vec4<f32>;
        var y2: vec4<f32>;
        var y3: vec4<f32>;
        // A's column (A_ROW_MAJOR) or element offset (A_OUTPUT_GRAD and 3) for step k
        var ka = k;
        var real = true;
        if (walk) {
            if (cl == 0u) {
                at0 = tap_index(ph, c0, tap);
                at1 = tap_index(ph, c1, tap);
                at2 = tap_index(ph, c2, tap);
                at3 = tap_index(ph, c3, tap);
            }
            ka = tap.a + cl * a_step;
            real = tap.real;
            let pl = cl * plane;
            y0 = tap_load(at0, pl);
            y1 = tap_load(at1, pl);
            y2 = tap_load(at2, pl);
            y3 = tap_load(at3, pl);
            cl += 1u;
            if (cl == channels) {
                cl = 0u;
                tap = next_tap(ph, tap);
            }
        } else if (B_MODE == B_TAPS && A_MODE == A_OUTPUT_GRAD) {
            ka = px.a;
            y0 = pix_load(c0, px);
            y1 = pix_load(c1, px);
            y2 = pix_load(c2, px);
            y3 = pix_load(c3, px);
            px = next_pix(px);
        } else {
            y0 = load_b(ph, c0, k, n0);
            y1 = load_b(ph, c1, k, n0 + 4u);
            y2 = load_b(ph, c2, k, n0 + 8u);
            y3 = load_b(ph, c3, k, n0 + 12u);
        }
        var x0: vec4<f32>;
        var x1: vec4<f32>;
        var x2: vec4<f32>;
        var x3: vec4<f32>;
        if (walk && !real) {
            // a phantom tap: its B is 0 and its (clamped) weight must not make 0·∞ = NaN
            x0 = vec4<f32>(0.0);
            x1 = vec4<f32>(0.0);
            x2 = vec4<f32>(0.0);
            x3 = vec4<f32>(0.0);
        } else if (A_WINDOWED || A_MODE == A_ROW_MAJOR || A_MODE == A_PHASE_TAPS || (A_MODE == A_OUTPUT_GRAD && B_MODE == B_TAPS)) {
            // (A_WINDOWED: every mode packed in step order, gemm_a_window.wgsl)
            let at = a_at(ka, k);
            x0 = a_col(r0, at);
            x1 = a_col(r1, at);
            x2 = a_col(r2, at);
            x3 = a_col(r3, at);
        } else if (A_MODE == A_TRANSPOSED) {
            // A is [groups, K, M]: column k's rows are adjacent
            let col = (ph.gc * params.dims.k + ka) * params.dims.m;
            x0 = a_col(r0, col);
            x1 = a_col(r1, col);
            x2 = a_col(r2, col);
            x3 = a_col(r3, col);
        } else {
            x0 = load_a4(ph, m0, 0u, ka);
            x1 = load_a4(ph, m0, 1u, ka);
            x2 = load_a4(ph, m0, 2u, ka);
            x3 = load_a4(ph, m0, 3u, ka);
        }
        acc00 += outer4(x0, y0);
        acc01 += outer4(x0, y1);
        acc02 += outer4(x0, y2);
        acc03 += outer4(x0, y3);
        acc10 += outer4(x1, y0);
        acc11 += outer4(x1, y1);
        acc12 += outer4(x1, y2);
        acc13 += outer4(x1, y3);
        acc20 += outer4(x2, y0);
        acc21 += outer4(x2, y1);
        acc22 += outer4(x2, y2);
        acc23 += outer4(x2, y3);
        acc30 += outer4(x3, y0);
        acc31 += outer4(x3, y1);
        acc32 += outer4(x3, y2);
        acc33 += outer4(x3, y3);
    }

    store16(ph, m0, n0, array<mat4x4<f32>, 16>(acc00, acc01, acc02, acc03, acc10, acc11, acc12, acc13,
                                                acc20, acc21, acc22, acc23, acc30, acc31, acc32, acc33));
}

// Fused activations, concatenated in front of the kernels that apply them in their
// write-out. ACT selects the function (the Rust twin is `Activation::code`):
// 0 none, 1 relu, 2 relu6, 3 leaky_relu(alpha), 4 sigmoid, 5 tanh, 6 gelu (erf form, as
// PyTorch's default). alpha comes from the kernel's uniform block.

override ACT: u32 = 0u;

// erf by Abramowitz & Stegun 7.1.26 (|error| ≤ 1.5e-7), odd-extended.
fn erf_approx(x: f32) -> f32 {
    let a = abs(x);
    let t = 1.0 / (1.0 + 0.3275911 * a);
    let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    let y = 1.0 - poly * exp(-a * a);
    return select(y, -y, x < 0.0);
}

// NaN, tested on the bits: WGSL lets compilers assume `x != x` is false, and max / clamp
// may return either operand for NaN.
fn is_nan(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
}

// NaN passes every activation unchanged, as in PyTorch.
fn activate(x: f32, alpha: f32) -> f32 {
    if (is_nan(x)) {
        return x;
    }
    switch ACT {
        case 1u: { return max(x, 0.0); }
        case 2u: { return clamp(x, 0.0, 6.0); }
        case 3u: { return select(x, alpha * x, x < 0.0); }
        case 4u: { return 1.0 / (1.0 + exp(-x)); }
        // tanh(±15) is ±1 in f32; clamping keeps exp-based tanh implementations from inf/inf.
        case 5u: { return tanh(clamp(x, -15.0, 15.0)); }
        case 6u: { return 0.5 * x * (1.0 + erf_approx(x * 0.70710678118654752)); }
        default: { return x; }
    }
}

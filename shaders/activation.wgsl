// Fused activations, concatenated in front of the kernels that apply them in their
// write-out. ACT selects the function (the Rust twin is `Activation::code`; tests/shaders.rs
// checks that both agree): gelu is the erf form, PyTorch's default; leaky_relu's slope alpha
// comes from the kernel's uniform block.

const ACT_NONE: u32 = 0u;
const ACT_RELU: u32 = 1u;
const ACT_RELU6: u32 = 2u;
const ACT_LEAKY_RELU: u32 = 3u;
const ACT_SIGMOID: u32 = 4u;
const ACT_TANH: u32 = 5u;
const ACT_GELU: u32 = 6u;

override ACT: u32 = ACT_NONE;

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
        case ACT_RELU: { return max(x, 0.0); }
        case ACT_RELU6: { return clamp(x, 0.0, 6.0); }
        case ACT_LEAKY_RELU: { return select(x, alpha * x, x < 0.0); }
        case ACT_SIGMOID: { return 1.0 / (1.0 + exp(-x)); }
        // tanh(±15) is ±1 in f32; clamping keeps exp-based tanh implementations from inf/inf.
        case ACT_TANH: { return tanh(clamp(x, -15.0, 15.0)); }
        case ACT_GELU: { return 0.5 * x * (1.0 + erf_approx(x * 0.70710678118654752)); }
        default: { return x; }
    }
}

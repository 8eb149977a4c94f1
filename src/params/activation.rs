//! The activations fused into the kernels' write-out.

/// An elementwise function applied to each output in the kernel's write-out (after the bias).
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub enum Activation {
    /// The identity.
    #[default]
    None,
    /// max(x, 0)
    Relu,
    /// min(max(x, 0), 6)
    Relu6,
    /// x for x ≥ 0, α·x below.
    LeakyRelu(f32),
    /// 1 / (1 + e^(−x))
    Sigmoid,
    /// tanh(x)
    Tanh,
    /// x·Φ(x) with the exact (erf) Φ, PyTorch's default `gelu`.
    Gelu,
}

impl Activation {
    /// One of each (leaky_relu with α = 0.1).
    pub const ALL: [Activation; 7] = [
        Activation::None,
        Activation::Relu,
        Activation::Relu6,
        Activation::LeakyRelu(0.1),
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Gelu,
    ];

    /// The kernels' `ACT` override value (see shaders/activation.wgsl).
    pub fn code(self) -> u32 {
        match self {
            Activation::None => 0,
            Activation::Relu => 1,
            Activation::Relu6 => 2,
            Activation::LeakyRelu(_) => 3,
            Activation::Sigmoid => 4,
            Activation::Tanh => 5,
            Activation::Gelu => 6,
        }
    }

    /// α of `LeakyRelu`, else 0.
    pub fn alpha(self) -> f32 {
        match self {
            Activation::LeakyRelu(a) => a,
            _ => 0.0,
        }
    }

    /// The function in f64 (the reference's).
    /// NaN passes every function unchanged, as in PyTorch (`f64::max` alone would drop it).
    pub fn apply(self, x: f64) -> f64 {
        if x.is_nan() {
            return x;
        }
        match self {
            Activation::None => x,
            Activation::Relu => x.max(0.0),
            Activation::Relu6 => x.clamp(0.0, 6.0),
            Activation::LeakyRelu(a) => {
                if x < 0.0 {
                    a as f64 * x
                } else {
                    x
                }
            }
            Activation::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Activation::Tanh => x.tanh(),
            Activation::Gelu => 0.5 * x * (1.0 + libm::erf(x / std::f64::consts::SQRT_2)),
        }
    }

    /// `none`, `relu`, `relu6`, `leaky_relu` (α = 0.01) or `leaky_relu:α`, `sigmoid`, `tanh`, `gelu`.
    pub fn parse(text: &str) -> Option<Activation> {
        let (name, arg) = match text.split_once(':') {
            Some((n, a)) => (n, Some(a)),
            None => (text, None),
        };
        Some(match (name.to_ascii_lowercase().as_str(), arg) {
            ("none", None) => Activation::None,
            ("relu", None) => Activation::Relu,
            ("relu6", None) => Activation::Relu6,
            ("leaky_relu", None) => Activation::LeakyRelu(0.01),
            ("leaky_relu", Some(a)) => Activation::LeakyRelu(a.trim().parse().ok()?),
            ("sigmoid", None) => Activation::Sigmoid,
            ("tanh", None) => Activation::Tanh,
            ("gelu", None) => Activation::Gelu,
            _ => return None,
        })
    }
}

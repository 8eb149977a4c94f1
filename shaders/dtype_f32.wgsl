// Storage type `elem` of the GEMM's a, b, bias and c, and of the depthwise kernel's tensors: f32.
alias elem = f32;

// Storage type of the GEMM's a, b, bias and c: f32.
alias elem = f32;

// Storage type `elem` of the GEMM's a, b, bias and c (and offset, mask), of the depthwise
// and pooling kernels' tensors: f32.
alias elem = f32;

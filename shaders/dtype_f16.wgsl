// Storage type `elem` of the GEMM's a, b, bias and c (and offset, mask), of the depthwise
// and pooling kernels' tensors, of channel_sum and depthwise_backward: f16 (arithmetic stays f32; values convert on load and store). Must come first in the
// module: `enable` precedes every declaration.
enable f16;
alias elem = f16;
const ELEM_IS_F32: bool = false;

// Storage type `elem` of the GEMM's a, b, bias and c (and offset, mask), of the depthwise
// and pooling kernels' tensors, of channel_sum and depthwise_backward: f32.
alias elem = f32;
const ELEM_IS_F32: bool = true;

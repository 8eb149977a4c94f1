// Joined in front of the gathers that apply a convolution's padding_mode (im2col.wgsl,
// vol2col.wgsl): what a position in the padding reads. PAD_MODE is `PaddingMode::code`:
// 0 zeros, 1 reflect (−1 reads 1, len reads len − 2; pads < len), 2 replicate (the edge),
// 3 circular (−1 reads len − 1, len reads 0; pads ≤ len). The host checks the pads.

override PAD_MODE: u32 = 0u;

// The input position read at position i of an axis of length len, or −1 where zero is read.
fn pad_source(i: i32, len: i32) -> i32 {
    if (i >= 0 && i < len) {
        return i;
    }
    switch PAD_MODE {
        case 1u: {
            return select(2 * (len - 1) - i, -i, i < 0);
        }
        case 2u: {
            return clamp(i, 0, len - 1);
        }
        case 3u: {
            // one wrap suffices (pads ≤ len); no `%` of a negative value: GLSL leaves its
            // sign undefined and naga's GL output wrapped wrongly on Mesa (the cross matrix)
            return select(select(i, i - len, i >= len), i + len, i < 0);
        }
        default: {
            return -1;
        }
    }
}

// The fold a gradient needs: the padded positions q (−pb ≤ q < len + pe, pb and pe the pads
// before and after) whose reads land on input position x. zeros: x alone; reflect and
// circular: at most three (the mirror or wrap below, x, the one above); replicate: the edge
// positions also take every padded position beyond them. preimage_count is how many to try,
// preimage(k) the k-th; a candidate outside the padded range comes back as NOWHERE, which no
// window reaches (every window of a valid output lies inside [−pb, len + pe)).

const NOWHERE: i32 = -1073741824;

fn preimage_count(x: i32, len: i32, pb: i32, pe: i32) -> i32 {
    switch PAD_MODE {
        case 1u, 3u: {
            return 3;
        }
        case 2u: {
            let lo = select(x, -pb, x == 0);
            let hi = select(x, len - 1 + pe, x == len - 1);
            return hi - lo + 1;
        }
        default: {
            return 1;
        }
    }
}

fn preimage(x: i32, len: i32, pb: i32, pe: i32, k: i32) -> i32 {
    switch PAD_MODE {
        case 1u: {
            if (k == 0) {
                return select(NOWHERE, -x, x >= 1 && x <= pb);
            }
            if (k == 2) {
                let q = 2 * (len - 1) - x;
                return select(NOWHERE, q, x <= len - 2 && q <= len - 1 + pe);
            }
            return x;
        }
        case 2u: {
            return select(x, -pb, x == 0) + k;
        }
        case 3u: {
            if (k == 0) {
                return select(NOWHERE, x - len, x - len >= -pb);
            }
            if (k == 2) {
                return select(NOWHERE, x + len, x + len < len + pe);
            }
            return x;
        }
        default: {
            return x;
        }
    }
}

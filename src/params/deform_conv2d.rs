//! deform_conv2d's parameters (conv2d's) and the offset and mask rules.

use super::*;

/// Parameters of `deform_conv2d` (as `torchvision.ops.deform_conv2d`): the same fields as
/// conv2d's (`groups` are the weight groups; the offset groups come from the offset's
/// channels), validated by [`Conv2dParams::validate_deform`]. Padding may be explicit per side;
/// `Same` is an error, as torchvision has no such mode. `algorithm` is `Auto` /
/// `ImplicitGemm` (bilinear samples gathered by the GEMM's B loader, no workspace) or
/// `Im2colGemm` (a deformable im2col workspace, then the GEMM).
pub type DeformConv2dParams = Conv2dParams;

/// A validated deform_conv2d: the conv's sizes and the number of offset groups.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeformGeometry {
    /// The conv's sizes (those of conv2d with the same weight).
    pub conv: Conv2dGeometry,
    /// Offset groups: the input channels split into this many groups, each with its own offsets (and mask).
    pub offset_groups: u32,
}

impl Conv2dParams {
    /// Validates input `[N, Cin, H, W]`, weight `[Cout, Cin/groups, kh, kw]`, offset
    /// `[N, 2·G_off·kh·kw, Ho, Wo]`, mask `[N, G_off·kh·kw, Ho, Wo]` and bias `[Cout]`.
    pub fn validate_deform(
        &self,
        input: &[usize],
        weight: &[usize],
        offset: &[usize],
        mask: Option<&[usize]>,
        bias: Option<&[usize]>,
    ) -> Result<DeformGeometry> {
        if self.padding == Padding::Same {
            return Err(Error::param("padding", "'same' is not supported by deform_conv2d (as in torchvision)"));
        }
        if self.padding_mode != PaddingMode::Zeros {
            return Err(Error::param(
                "padding_mode",
                format!("deform_conv2d reads zeros in the padding (as torchvision), not {}", self.padding_mode.name()),
            ));
        }
        if !matches!(self.algorithm, Algorithm::Auto | Algorithm::ImplicitGemm | Algorithm::Im2colGemm) {
            return Err(Error::param(
                "algorithm",
                format!("deform_conv2d runs implicit_gemm or im2col_gemm, not {}", self.algorithm.name()),
            ));
        }
        let conv = self.validate(input, weight, bias)?;
        check_batched_rank("offset", offset, 4, "N, 2·offset_groups·kh·kw, Ho, Wo")?;
        let taps = (conv.kh * conv.kw) as usize;
        if offset[1] % (2 * taps) != 0 {
            return Err(Error::ChannelMismatch(format!(
                "offset has {} channels: not a multiple of 2·kh·kw = {}",
                offset[1],
                2 * taps
            )));
        }
        let og = offset[1] / (2 * taps);
        if input[1] % og != 0 {
            return Err(Error::Groups(format!(
                "{og} offset groups (from {} offset channels) do not divide input channels {}",
                offset[1], input[1]
            )));
        }
        let (n, ho, wo) = (input[0], conv.h_out as usize, conv.w_out as usize);
        let expected = vec![n, 2 * og * taps, ho, wo];
        if offset != expected.as_slice() {
            return Err(Error::ShapeMismatch { what: "offset", expected, got: offset.to_vec() });
        }
        if let Some(m) = mask {
            check_batched_rank("mask", m, 4, "N, offset_groups·kh·kw, Ho, Wo")?;
            let expected = vec![n, og * taps, ho, wo];
            if m != expected.as_slice() {
                return Err(Error::ShapeMismatch { what: "mask", expected, got: m.to_vec() });
            }
        }
        Ok(DeformGeometry { conv, offset_groups: og as u32 })
    }
}

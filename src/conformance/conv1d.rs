//! conv1d's conformance cases (on the conv2d cases' width axis).

use super::*;

/// conv1d on a conv2d case's width axis (the case's width, stride, dilation and padding; its
/// data's first values), against the 1-D reference.
#[derive(Clone, Debug, PartialEq)]
pub struct Conv1dCase(pub Conv2dCase);

impl std::fmt::Display for Conv1dCase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl Conv1dCase {
    /// The case of a conv1d of `input` `[N, Cin, L]` and `weight` `[Cout, Cin/G, k]` with
    /// `params` (the width axis of a conv2d case of height 1; seed 0).
    pub fn of(params: Conv1dParams, input: [usize; 3], weight: [usize; 3], bias: bool) -> Self {
        let padding = match params.padding {
            Padding1d::Valid => Padding::Valid,
            Padding1d::Same => Padding::Same,
            Padding1d::Symmetric(p) => Padding::Symmetric([0, p]),
            Padding1d::Explicit { left, right } => Padding::Explicit { top: 0, left, bottom: 0, right },
        };
        let conv = Conv2dParams {
            stride: [1, params.stride],
            padding,
            dilation: [1, params.dilation],
            groups: params.groups,
            activation: params.activation,
            algorithm: params.algorithm,
            padding_mode: params.padding_mode,
        };
        Conv1dCase(Conv2dCase {
            input: [input[0], input[1], 1, input[2]],
            weight: [weight[0], weight[1], 1, weight[2]],
            bias,
            params: conv,
            seed: 0,
        })
    }

    /// The conv1d parameters of the case's width axis (its algorithm as given).
    pub fn params(&self) -> Conv1dParams {
        let p = &self.0.params;
        let padding = match p.padding {
            Padding::Valid => Padding1d::Valid,
            Padding::Same => Padding1d::Same,
            Padding::Symmetric([_, w]) => Padding1d::Symmetric(w),
            Padding::Explicit { left, right, .. } => Padding1d::Explicit { left, right },
        };
        Conv1dParams {
            stride: p.stride[1],
            padding,
            dilation: p.dilation[1],
            groups: p.groups,
            activation: p.activation,
            algorithm: p.algorithm,
            padding_mode: p.padding_mode,
        }
    }

    /// Whether the sequence's padding mode changes what is read (a mode other than zeros
    /// and some padding on the width axis).
    pub fn pads_by_mode(&self) -> bool {
        let s = |a: [usize; 4]| [a[0], a[1], 1, a[3]];
        self.params().as_conv2d().validate(&s(self.0.input), &s(self.0.weight), None).is_ok_and(|g| g.pads_by_mode())
    }
}

impl OpCase for Conv1dCase {
    fn inputs(&self) -> Result<Vec<HostTensor>> {
        let (c, (x, w, b)) = (&self.0, self.0.data());
        // [N, C, W] and [Cout, Cin/G, kw]: the first values of the case's seeded data.
        let row =
            |h: HostTensor, s: [usize; 4]| HostTensor::new(&[s[0], s[1], s[3]], h.data[..s[0] * s[1] * s[3]].to_vec());
        Ok([row(x, c.input)?, row(w, c.weight)?].into_iter().chain(b).collect())
    }
    fn expected(&self, i: &[HostTensor]) -> Result<Vec<Vec<f64>>> {
        Ok(vec![crate::reference::conv1d(&i[0], &i[1], i.get(2), &self.params())?.1])
    }
    fn output_shapes(&self, s: &[&[usize]]) -> Result<Vec<Vec<usize>>> {
        let out = self.params().validate(&crate::ops::as_batched(s[0], 3), s[1], s.get(2).copied())?;
        Ok(vec![crate::ops::returned_shape(s[0], &out)])
    }
    fn record(&self, ctx: &GpuContext, e: &mut wgpu::CommandEncoder, t: &[Tensor], o: &[Tensor]) -> Result<Ran> {
        let info = crate::ops::conv1d::conv1d_into(ctx, e, &t[0], &t[1], t.get(2), &self.params(), &o[0])?;
        Ok(Ran { label: info.algorithm.name().to_string(), workspace_bytes: info.workspace_bytes })
    }
    fn flops(&self, s: &[&[usize]]) -> Result<f64> {
        let out = self.params().validate(&crate::ops::as_batched(s[0], 3), s[1], None)?;
        Ok(2.0 * out.iter().product::<usize>() as f64 * s[1][1..].iter().product::<usize>() as f64)
    }
}

//! The GEMM's tiling policy: which register blocking and tile a GEMM runs with on an adapter
//! (`GemmKernel::resolve`, `TileShape::pick`), apart from the context that holds the
//! setting (`EngineConfig::gemm_kernel`) and the kernels that record it (`kernels::gemm`).

/// The tiled GEMM's tile and register blocking (see shaders/gemm.wgsl and its cores gemm_4x4/8x8/16x16/flat.wgsl).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum GemmKernel {
    /// Per adapter and GEMM ([`GemmKernel::resolve`]): on CPU adapters (llvmpipe,
    /// SwiftShader) `Flat16x16` or `Block16x16`, on GPUs `Block8x8`.
    #[default]
    Auto,
    /// 64×64 tiles; 256 invocations, 4×4 outputs each.
    Block4x4,
    /// 64×64 tiles; 64 invocations, 8×8 outputs each.
    Block8x8,
    /// 64 invocations, 16×16 outputs each, in a 128×128, 64×256 or 256×64 tile picked per
    /// GEMM ([`TileShape::pick`]). It loads from workgroup memory half as often per
    /// multiply-add as `Block8x8`, which is what counts on llvmpipe (every load inside a loop
    /// runs lane by lane there); on GPUs its 256 accumulators per invocation would spill, so
    /// it is not the GPU default. Measurements: BENCHMARKS.md.
    Block16x16,
    /// `Block16x16`'s tiles and blocks with no workgroup memory and no barrier: each
    /// invocation reads its operands from the buffers. On llvmpipe, which runs a workgroup as
    /// coroutines switching at every barrier, it wins on dense and pointwise GEMMs (B read as
    /// vec4) and on GEMMs of few tiles; GEMMs of many tiles whose B is gathered per element
    /// load 4× as often and gain nothing.
    Flat16x16,
}

/// The tile of `GemmKernel::Block16x16` (the shader's `TILE_SHAPE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TileShape {
    /// 128×128, K in slices of 16.
    Square = 0,
    /// 64 rows × 256 columns, K in slices of 8.
    Wide = 1,
    /// 256 rows × 64 columns, K in slices of 8.
    Tall = 2,
}

impl TileShape {
    /// Every shape, in `TILE_SHAPE` order.
    pub const ALL: [TileShape; 3] = [TileShape::Square, TileShape::Wide, TileShape::Tall];

    /// (rows, columns) of C one workgroup computes.
    pub fn dims(self) -> (u32, u32) {
        match self {
            TileShape::Square => (128, 128),
            TileShape::Wide => (64, 256),
            TileShape::Tall => (256, 64),
        }
    }

    /// The shape whose tiles cover an `m × n` GEMM with the fewest padded elements (ties go
    /// to the square tile, which loads the least per multiply-add).
    pub fn pick(m: u32, n: u32) -> TileShape {
        let padded = |t: TileShape| {
            let (bm, bn) = t.dims();
            (m as u64).div_ceil(bm as u64) * bm as u64 * (n as u64).div_ceil(bn as u64) * bn as u64
        };
        [TileShape::Square, TileShape::Wide, TileShape::Tall].into_iter().min_by_key(|&t| padded(t)).unwrap()
    }
}

/// Whether the flat GEMM ([`GemmKernel::Flat16x16`]) reads its A operand from uniform
/// windows (`shaders/gemm_a_window.wgsl`): A (the weights, f32, `[groups·M, K]` stored
/// row-major or transposed) is packed into 64 KiB windows, one per K pass
/// (`shaders/pack_a.wgsl`, one extra launch), and
/// each pass binds its window as a uniform buffer. On llvmpipe a storage load inside a loop
/// runs lane by lane with a branch per lane, while a uniform load is one unrolled gather:
/// ~3× cheaper per element. A window holds 16384 / (groups·M) steps of K; a longer K runs in
/// passes, each after the first adding onto the partial sums in C, which costs about what
/// the cheaper loads save. Measurements: BENCHMARKS.md.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum UniformA {
    /// On CPU adapters, where the whole K fits one window (one pass) and the GEMM has at
    /// least [`UniformA::AUTO_MIN_MACS`] multiply-adds (below that the packing launch costs
    /// about what it saves): r50_pw's 64 × 256, the stem's 64 × 147. Storage reads elsewhere.
    #[default]
    Auto,
    /// Wherever it applies: the flat kernel, f32, `A_ROW_MAJOR` or `A_TRANSPOSED`, no split K,
    /// at most [`UniformA::MAX_ROWS`] rows, K in as many passes as it takes.
    On,
    /// Never: A from its storage binding.
    Off,
}

impl UniformA {
    /// The most rows of A a window holds 16 steps of.
    pub const MAX_ROWS: u64 = 1024;
    /// The fewest multiply-adds of a GEMM `Auto` windows.
    pub const AUTO_MIN_MACS: u64 = 1 << 22;

    /// The width in K steps of each window for an A of `rows` rows and `k` columns in a GEMM
    /// of `macs` multiply-adds (a multiple of 16), or `None` to read A from storage, on an
    /// adapter of this type.
    pub fn width(self, device_type: wgpu::DeviceType, rows: u64, k: u32, macs: u64) -> Option<u32> {
        if rows == 0 || rows > UniformA::MAX_ROWS {
            return None;
        }
        let width = ((crate::kernels::pack_a::WINDOW_ELEMS as u64 / rows) / 16 * 16) as u32;
        match self {
            UniformA::Auto if device_type == wgpu::DeviceType::Cpu && k <= width && macs >= UniformA::AUTO_MIN_MACS => {
                Some(width)
            }
            UniformA::On => Some(width),
            _ => None,
        }
    }
}

/// How a GEMM's B loader reads (an input of [`GemmKernel::resolve`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BLoads {
    /// Rows as vec4 (dense and pointwise B, 16-byte aligned).
    Vec4,
    /// Element by element (the transposed and grad_weight gathers, unaligned dense B).
    Gather,
    /// The gathers the flat kernel walks without a division per k: the implicit conv
    /// (`BMode::Implicit`) and the transposed phases (`BMode::Transposed`) tap-major, each
    /// column's input index and padding test once per tap; grad_weight's taps
    /// (`BMode::Taps`) pixel by pixel, the pixel's coordinates stepped.
    Implicit,
    /// Bilinear samples whose per-tap sampling is cached per column quad (deform): the flat
    /// kernel, which loads four quads per k, would recompute it every time.
    Sample,
    /// A column matrix read transposed (deform_conv2d's grad_weight over its unfold,
    /// `BMode::ColumnsT`): a column of B is a row of the workspace, so each k of a column
    /// tile touches as many rows as the tile has columns.
    Strided,
}

impl GemmKernel {
    /// What `Auto` means on an adapter of this type for `groups` GEMMs of `m × n` whose B
    /// operand loads as `b`. Explicit choices stand. On GPUs `Block8x8`. On CPU adapters:
    /// - `Flat16x16` where B loads as vec4, or where 16×16 tiles give fewer than four
    ///   workgroups (r50_c5, M 512 × N 49: 25–35 ms flat against 49–71 ms with `Block8x8` on
    ///   lavapipe);
    /// - `Flat16x16` for the gathers it walks (`BLoads::Implicit`);
    /// - `Block16x16` for other gathered B on enough tiles (flat loads 4× as much B there),
    ///   and for B read across the rows of a column matrix (`BLoads::Strided`) on any number
    ///   of tiles (dcn_v2's grad_weight, 3 tiles: 1.4–2.3× faster than flat in three rounds);
    /// - `Block8x8` for sampled B on few tiles.
    ///
    /// The measurements behind each rule: BENCHMARKS.md, "Why Auto picks what it picks".
    pub fn resolve(self, device_type: wgpu::DeviceType, m: u32, n: u32, groups: u32, b: BLoads) -> GemmKernel {
        match self {
            GemmKernel::Auto if device_type == wgpu::DeviceType::Cpu => {
                let (bm, bn) = TileShape::pick(m, n).dims();
                let tiles = (m as u64).div_ceil(bm as u64) * (n as u64).div_ceil(bn as u64) * groups as u64;
                match (tiles >= 4, b) {
                    (_, BLoads::Vec4 | BLoads::Implicit) | (false, BLoads::Gather) => GemmKernel::Flat16x16,
                    (true, _) | (false, BLoads::Strided) => GemmKernel::Block16x16,
                    (false, BLoads::Sample) => GemmKernel::Block8x8,
                }
            }
            GemmKernel::Auto => GemmKernel::Block8x8,
            k => k,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn auto_gemm_kernel_per_adapter_and_shape() {
        use super::BLoads::*;
        use super::GemmKernel::*;
        use wgpu::DeviceType::{Cpu, DiscreteGpu};
        // r50_pw: 64 × 3136, pointwise B read as vec4 → flat; gathered B → shared tiles
        assert_eq!(Auto.resolve(Cpu, 64, 3136, 1, Vec4), Flat16x16);
        assert_eq!(Auto.resolve(Cpu, 64, 3136, 1, Gather), Block16x16);
        assert_eq!(Auto.resolve(Cpu, 64, 3136, 1, Sample), Block16x16);
        // the implicit conv gather: flat on CPUs whatever the tile count, shared tiles on GPUs
        assert_eq!(Auto.resolve(Cpu, 64, 3136, 1, Implicit), Flat16x16);
        assert_eq!(Auto.resolve(Cpu, 512, 49, 1, Implicit), Flat16x16);
        assert_eq!(Auto.resolve(DiscreteGpu, 64, 3136, 1, Implicit), Block8x8);
        // r50_c5: 512 × 49, two 256×64 tiles → flat, but never for sampled B
        assert_eq!(Auto.resolve(Cpu, 512, 49, 1, Gather), Flat16x16);
        assert_eq!(Auto.resolve(Cpu, 512, 49, 1, Sample), Block8x8);
        assert_eq!(Auto.resolve(DiscreteGpu, 64, 3136, 1, Vec4), Block8x8);
        assert_eq!(Block4x4.resolve(Cpu, 64, 3136, 1, Vec4), Block4x4);
        assert_eq!(Flat16x16.resolve(DiscreteGpu, 8, 8, 1, Gather), Flat16x16);
        // dcn_v2's grad_weight over its unfold: 64 × 576, three tiles, B strided → shared tiles
        assert_eq!(Auto.resolve(Cpu, 64, 576, 1, Strided), Block16x16);
        assert_eq!(Auto.resolve(DiscreteGpu, 64, 576, 1, Strided), Block8x8);
    }
}

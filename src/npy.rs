//! A small, strict reader and writer for NumPy `.npy` files (format versions 1.0, 2.0, 3.0).
//!
//! Reads `f4` (as is), `f8` and `f2` (converted to f32, reported in
//! [`NpyInfo::converted_from`]), little- or big-endian (`<`, `>`; `=` is little-endian, as
//! NumPy writes it on every platform wgconv runs on), in C or Fortran order (a Fortran-order
//! array, which NumPy writes for any F-contiguous array, is reordered to C order: the same
//! array). Every size in the header is checked against the bytes actually present before
//! anything is allocated from it.

use crate::error::{Error, Result};

const MAGIC: &[u8; 6] = b"\x93NUMPY";
/// The most dimensions a header may declare.
const MAX_RANK: usize = 32;

/// What the reader found besides the data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NpyInfo {
    /// `Some("float64")` / `Some("float16")` when the file's data was converted to f32.
    pub converted_from: Option<&'static str>,
}

fn err(msg: impl Into<String>) -> Error {
    Error::Npy(msg.into())
}

/// Parses a `.npy` image held in memory. Returns `(shape, data, info)`.
pub fn parse(bytes: &[u8]) -> Result<(Vec<usize>, Vec<f32>, NpyInfo)> {
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err(err("not a .npy file (bad magic)"));
    }
    let (major, minor) = (bytes[6], bytes[7]);
    let (header_len, header_start) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10usize),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err(err("truncated header length"));
            }
            (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12)
        }
        _ => return Err(err(format!("unsupported format version {major}.{minor}"))),
    };
    let data_start = header_start
        .checked_add(header_len)
        .filter(|&e| e <= bytes.len())
        .ok_or_else(|| err(format!("header claims {header_len} bytes but the file has {}", bytes.len())))?;
    let header = std::str::from_utf8(&bytes[header_start..data_start]).map_err(|_| err("header is not text"))?;
    let descr = dict_value(header, "descr")?;
    let fortran = dict_value(header, "fortran_order")?;
    let shape_text = dict_value(header, "shape")?;

    let descr = descr.trim_matches(|c| c == '\'' || c == '"');
    let (big, kind) = match descr.split_at_checked(1) {
        Some(("<" | "=", kind)) => (false, kind),
        Some((">", kind)) => (true, kind),
        _ => (false, ""),
    };
    let (itemsize, from): (usize, Option<&'static str>) = match (kind, big) {
        ("f4", false) => (4, None),
        ("f4", true) => (4, Some("big-endian float32")),
        ("f8", _) => (8, Some("float64")),
        ("f2", _) => (2, Some("float16")),
        _ => {
            return Err(err(format!(
                "dtype '{descr}' is not supported: use float32 (or float64/float16, converted), either byte order"
            )))
        }
    };
    let fortran = match fortran {
        "False" => false,
        "True" => true,
        other => return Err(err(format!("bad fortran_order value '{other}'"))),
    };
    let shape = parse_shape(shape_text)?;
    let numel = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| err(format!("shape {shape:?} overflows")))?;
    let data = &bytes[data_start..];
    let want = numel.checked_mul(itemsize).ok_or_else(|| err(format!("shape {shape:?} overflows")))?;
    if data.len() != want {
        return Err(err(format!("shape {shape:?} of {descr} needs {want} data bytes but the file has {}", data.len())));
    }
    // Only now, with `want` proven to equal bytes that exist, allocate.
    let word = |c: &[u8]| -> [u8; 8] {
        let mut w = [0u8; 8];
        w[..c.len()].copy_from_slice(c);
        if big {
            w[..c.len()].reverse();
        }
        w
    };
    let out: Vec<f32> = match itemsize {
        4 => data.chunks_exact(4).map(|c| f32::from_le_bytes(word(c)[..4].try_into().expect("4 bytes"))).collect(),
        8 => data.chunks_exact(8).map(|c| f64::from_le_bytes(word(c)) as f32).collect(),
        _ => data.chunks_exact(2).map(|c| f16_to_f32(u16::from_le_bytes([word(c)[0], word(c)[1]]))).collect(),
    };
    let out = if fortran { fortran_to_c(&shape, &out) } else { out };
    Ok((shape, out, NpyInfo { converted_from: from }))
}

/// The same array in C order from its Fortran-order (first axis fastest) elements: C index
/// i of multi-index (i0, .., ik) takes Fortran element i0 + s0·(i1 + s1·(i2 + ..)).
fn fortran_to_c(shape: &[usize], f: &[f32]) -> Vec<f32> {
    if shape.len() < 2 {
        return f.to_vec();
    }
    // Fortran strides (elements) of each axis.
    let mut strides = vec![1usize; shape.len()];
    for a in 1..shape.len() {
        strides[a] = strides[a - 1] * shape[a - 1];
    }
    let mut out = Vec::with_capacity(f.len());
    let mut index = vec![0usize; shape.len()];
    for _ in 0..f.len() {
        out.push(f[index.iter().zip(&strides).map(|(i, s)| i * s).sum::<usize>()]);
        // next C multi-index: the last axis fastest
        for a in (0..shape.len()).rev() {
            index[a] += 1;
            if index[a] < shape[a] {
                break;
            }
            index[a] = 0;
        }
    }
    out
}

/// The text of `'key': value` in the header dict, up to the next top-level comma or `}`.
fn dict_value<'a>(header: &'a str, key: &str) -> Result<&'a str> {
    let pat1 = format!("'{key}'");
    let pat2 = format!("\"{key}\"");
    let pos = header.find(&pat1).or_else(|| header.find(&pat2)).ok_or_else(|| err(format!("header has no '{key}'")))?;
    let rest = &header[pos + pat1.len()..];
    let rest = rest.trim_start().strip_prefix(':').ok_or_else(|| err(format!("no ':' after '{key}'")))?;
    let rest = rest.trim_start();
    let mut depth = 0i32;
    for (i, ch) in rest.char_indices() {
        match ch {
            '(' | '[' => depth += 1,
            ')' | ']' => depth -= 1,
            ',' | '}' if depth == 0 => return Ok(rest[..i].trim()),
            _ => {}
        }
        if depth < 0 {
            return Err(err(format!("unbalanced brackets in '{key}'")));
        }
    }
    Err(err(format!("unterminated value for '{key}'")))
}

fn parse_shape(text: &str) -> Result<Vec<usize>> {
    let inner = text
        .strip_prefix('(')
        .and_then(|t| t.strip_suffix(')'))
        .ok_or_else(|| err(format!("shape '{text}' is not a tuple")))?;
    let mut shape = Vec::new();
    for part in inner.split(',') {
        let p = part.trim();
        if p.is_empty() {
            continue;
        }
        if shape.len() == MAX_RANK {
            return Err(err(format!("more than {MAX_RANK} dimensions")));
        }
        shape.push(p.trim_end_matches('L').parse::<usize>().map_err(|_| err(format!("bad dimension '{p}'")))?);
    }
    Ok(shape)
}

/// IEEE half → single, exact (every f16 is representable in f32).
fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exp = ((h >> 10) & 0x1f) as u32;
    let man = (h & 0x3ff) as u32;
    let bits = match (exp, man) {
        (0, 0) => sign,
        (0, m) => {
            // subnormal: value = m · 2^-24
            let v = m as f32 * (1.0 / 16_777_216.0);
            return if sign != 0 { -v } else { v };
        }
        (0x1f, 0) => sign | 0x7f80_0000,
        (0x1f, m) => sign | 0x7fc0_0000 | (m << 13),
        (e, m) => sign | ((e + 112) << 23) | (m << 13),
    };
    f32::from_bits(bits)
}

/// Serialises an f32 array as a version-1.0 `.npy` image (little-endian, C order).
pub fn to_bytes(shape: &[usize], data: &[f32]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_text = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape_text}, }}");
    // Pad with spaces so that magic + len + header + '\n' is a multiple of 64.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + data.len() * 4);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// Reads a `.npy` file.
pub fn read(path: &std::path::Path) -> Result<(Vec<usize>, Vec<f32>, NpyInfo)> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io { path: path.display().to_string(), source })?;
    parse(&bytes).map_err(|e| match e {
        Error::Npy(m) => Error::Npy(format!("{}: {m}", path.display())),
        other => other,
    })
}

/// Writes a `.npy` file.
pub fn write(path: &std::path::Path, shape: &[usize], data: &[f32]) -> Result<()> {
    std::fs::write(path, to_bytes(shape, data)).map_err(|source| Error::Io { path: path.display().to_string(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for shape in [vec![3usize], vec![2, 3, 4], vec![1, 1, 1, 5]] {
            let n: usize = shape.iter().product();
            let data: Vec<f32> = (0..n).map(|i| i as f32 * 0.5 - 1.0).collect();
            let bytes = to_bytes(&shape, &data);
            assert_eq!(bytes.len() % 64, (n * 4) % 64);
            let (s, d, info) = parse(&bytes).unwrap();
            assert_eq!((s, d, info.converted_from), (shape, data, None));
        }
    }

    #[test]
    fn huge_header_claim_is_an_error_not_an_allocation() {
        let bytes = to_bytes(&[2], &[1.0, 2.0]);
        let at = bytes.windows(4).position(|w| w == b"(2,)").unwrap();
        let mut bytes = [&bytes[..at], b"(1000000,1000000)".as_slice(), &bytes[at + 4..]].concat();
        let len = u16::from_le_bytes([bytes[8], bytes[9]]) + 13;
        bytes[8..10].copy_from_slice(&len.to_le_bytes());
        assert!(matches!(parse(&bytes), Err(Error::Npy(_))));
    }

    /// A v1.0 file with this header's descr and order, and these data bytes.
    fn file(descr: &str, fortran: bool, shape: &str, data: &[u8]) -> Vec<u8> {
        let order = if fortran { "True" } else { "False" };
        let mut h = format!("{{'descr': '{descr}', 'fortran_order': {order}, 'shape': {shape}, }}");
        while (10 + h.len() + 1) % 64 != 0 {
            h.push(' ');
        }
        h.push('\n');
        [b"\x93NUMPY\x01\x00".as_slice(), &(h.len() as u16).to_le_bytes(), h.as_bytes(), data].concat()
    }

    /// The kind of the field case `npy_fortran_order`: NumPy writes an F-contiguous array
    /// (a transpose, say) in Fortran order; it is the same array.
    #[test]
    fn fortran_order_reads_as_the_same_array() {
        // the 2x3 array [[0, 1, 2], [3, 4, 5]] stored column by column
        let f: Vec<u8> = [0f32, 3.0, 1.0, 4.0, 2.0, 5.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        let (shape, data, _) = parse(&file("<f4", true, "(2, 3)", &f)).unwrap();
        assert_eq!((shape, data), (vec![2, 3], vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]));
        // rank 3: element (i, j, k) at Fortran index i + 2·(j + 3·k), value 100i + 10j + k
        let (s0, s1, s2) = (2usize, 3usize, 4usize);
        let mut f = vec![0f32; s0 * s1 * s2];
        for i in 0..s0 {
            for j in 0..s1 {
                for k in 0..s2 {
                    f[i + s0 * (j + s1 * k)] = (100 * i + 10 * j + k) as f32;
                }
            }
        }
        let bytes: Vec<u8> = f.iter().flat_map(|v| v.to_le_bytes()).collect();
        let (shape, data, _) = parse(&file("<f4", true, "(2, 3, 4)", &bytes)).unwrap();
        assert_eq!(shape, vec![2, 3, 4]);
        for (c, v) in data.iter().enumerate() {
            let (i, j, k) = (c / 12, c / 4 % 3, c % 4);
            assert_eq!(*v, (100 * i + 10 * j + k) as f32, "C index {c}");
        }
        // rank 1 and 0 are the same either way
        let one: Vec<u8> = [1f32, 2.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(parse(&file("<f4", true, "(2,)", &one)).unwrap().1, vec![1.0, 2.0]);
    }

    #[test]
    fn big_endian_floats_are_read() {
        let vals = [1.5f64, -2.25, 3.0e5];
        let be4: Vec<u8> = vals.iter().flat_map(|&v| (v as f32).to_be_bytes()).collect();
        let (_, d, info) = parse(&file(">f4", false, "(3,)", &be4)).unwrap();
        assert_eq!((d, info.converted_from), (vec![1.5, -2.25, 3.0e5], Some("big-endian float32")));
        let be8: Vec<u8> = vals.iter().flat_map(|v| v.to_be_bytes()).collect();
        assert_eq!(parse(&file(">f8", false, "(3,)", &be8)).unwrap().1, vec![1.5, -2.25, 3.0e5]);
        let be2: Vec<u8> = [0x3c00u16, 0xc000].iter().flat_map(|v| v.to_be_bytes()).collect();
        assert_eq!(parse(&file(">f2", false, "(2,)", &be2)).unwrap().1, vec![1.0, -2.0]);
        let native: Vec<u8> = [7f32].iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(parse(&file("=f4", false, "(1,)", &native)).unwrap().1, vec![7.0]);
        for bad in ["<i4", ">i8", "|u1", "f4", "<c8"] {
            assert!(parse(&file(bad, false, "(1,)", &[0; 8])).is_err(), "{bad}");
        }
    }

    #[test]
    fn half_conversion() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert!(f16_to_f32(0x7e00).is_nan());
        assert_eq!(f16_to_f32(0x7c00), f32::INFINITY);
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = to_bytes(&[2, 3], &[1.0; 6]);
        for cut in 0..bytes.len() {
            assert!(parse(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }
}

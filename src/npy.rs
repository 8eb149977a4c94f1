//! A small, strict reader and writer for NumPy `.npy` files (format versions 1.0, 2.0, 3.0).
//!
//! Reads little-endian `f4` (as is), `f8` and `f2` (converted to f32, reported in
//! [`NpyInfo::converted_from`]), C order only. Every size in the header is checked against
//! the bytes actually present before anything is allocated from it.

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
    let (itemsize, from): (usize, Option<&'static str>) = match descr {
        "<f4" => (4, None),
        "<f8" => (8, Some("float64")),
        "<f2" => (2, Some("float16")),
        other => {
            return Err(err(format!(
                "dtype '{other}' is not supported: use little-endian float32 (or float64/float16, converted)"
            )))
        }
    };
    match fortran {
        "False" => {}
        "True" => return Err(err("Fortran-order arrays are not supported: save with np.ascontiguousarray")),
        other => return Err(err(format!("bad fortran_order value '{other}'"))),
    }
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
    let out: Vec<f32> = match itemsize {
        4 => data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
        8 => data
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32)
            .collect(),
        _ => data.chunks_exact(2).map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]]))).collect(),
    };
    Ok((shape, out, NpyInfo { converted_from: from }))
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

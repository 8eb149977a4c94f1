//! NumPy `.npy` files and `.npz` archives through well-kept crates (`npyz` reads and writes
//! the array format, `zip` the archive), with what wgconv adds around them: every size in the
//! header is checked against the bytes actually present before anything is allocated from
//! it, every dtype a user is likely to hand over becomes f32 with a note, and Fortran-order
//! arrays come back in C order.
//!
//! Reads `f4` (as is); `f8`, `f2`, integers (`i1`..`i8`, `u1`..`u8`) and `b1` converted to f32
//! (named in [`NpyInfo::converted_from`]; an integer beyond ±2²⁴ rounds to the nearest f32);
//! little- or big-endian; C or Fortran order (NumPy writes any F-contiguous array, a
//! transpose say, in Fortran order: the same array). `path.npz:name` names array `name` of an
//! archive (`np.savez`, `np.savez_compressed`); a bare `path.npz` holding one array reads
//! that one. Writes little-endian f32 in C order, as `.npy`, or as an archive of one array
//! when the path ends in `.npz` (`path.npz:name` names it; default `arr_0`, NumPy's).

use std::io::{Read, Write};

use crate::error::{Error, Result};

/// The most dimensions a header may declare.
const MAX_RANK: usize = 32;

/// What the reader found besides the data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NpyInfo {
    /// The file's dtype when its data was converted to f32 (`Some("float64")`,
    /// `Some("int64")`, `Some("big-endian float32")`, …); `None` for little-endian float32.
    pub converted_from: Option<&'static str>,
}

fn err(msg: impl Into<String>) -> Error {
    Error::Npy(msg.into())
}

/// The name of a dtype wgconv converts from, and its size in bytes.
fn dtype_name(kind: npyz::TypeChar, size: u64, big: bool) -> Option<(&'static str, usize)> {
    use npyz::TypeChar::{Bool, Float, Int, Uint};
    Some(match (kind, size) {
        (Float, 4) if big => ("big-endian float32", 4),
        (Float, 4) => ("float32", 4),
        (Float, 8) => ("float64", 8),
        (Float, 2) => ("float16", 2),
        (Int, 1) => ("int8", 1),
        (Int, 2) => ("int16", 2),
        (Int, 4) => ("int32", 4),
        (Int, 8) => ("int64", 8),
        (Uint, 1) => ("uint8", 1),
        (Uint, 2) => ("uint16", 2),
        (Uint, 4) => ("uint32", 4),
        (Uint, 8) => ("uint64", 8),
        (Bool, 1) => ("bool", 1),
        _ => return None,
    })
}

/// Every element of `file` as f32 (its dtype `T` read by npyz, then converted).
fn elements<T: npyz::Deserialize>(file: npyz::NpyFile<&[u8]>, f: impl Fn(T) -> f32) -> Result<Vec<f32>> {
    let reader = file.data::<T>().map_err(|e| err(format!("data: {e}")))?;
    reader.map(|v| v.map(&f).map_err(|e| err(format!("data: {e}")))).collect()
}

/// Parses a `.npy` image held in memory. Returns `(shape, data, info)`.
pub fn parse(bytes: &[u8]) -> Result<(Vec<usize>, Vec<f32>, NpyInfo)> {
    // The header's declared length against the bytes present, before npyz allocates it:
    // magic (6), version (2), then a u16 (1.0) or u32 (2.0, 3.0) length.
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(err("not a .npy file (bad magic)"));
    }
    let (declared, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12),
        2 | 3 => return Err(err("truncated header length")),
        v => return Err(err(format!("unsupported format version {v}.{}", bytes[7]))),
    };
    if start + declared > bytes.len() {
        return Err(err(format!("header claims {declared} bytes but the file has {}", bytes.len())));
    }
    let mut rest = bytes;
    let header = npyz::NpyHeader::from_reader(&mut rest).map_err(|e| err(format!("not a valid .npy header: {e}")))?;
    let npyz::DType::Plain(ts) = header.dtype() else {
        return Err(err("structured arrays (record dtypes) are not supported: save a plain float32 array"));
    };
    let big = ts.endianness() == npyz::Endianness::Big;
    let Some((name, itemsize)) = dtype_name(ts.type_char(), ts.size_field(), big) else {
        return Err(err(format!(
            "dtype '{ts}' is not supported: use float32 (float64/float16, integers and bool are converted), either \
             byte order"
        )));
    };
    if header.shape().len() > MAX_RANK {
        return Err(err(format!("more than {MAX_RANK} dimensions")));
    }
    let shape: Vec<usize> = header
        .shape()
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| err(format!("dimension {d} does not fit this machine"))))
        .collect::<Result<_>>()?;
    let numel = shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    let want = numel.and_then(|n| n.checked_mul(itemsize)).ok_or_else(|| err(format!("shape {shape:?} overflows")))?;
    if rest.len() != want {
        return Err(err(format!("shape {shape:?} of {ts} needs {want} data bytes but the file has {}", rest.len())));
    }
    // Only now, with `want` proven to equal bytes that exist, read (and allocate).
    let fortran = header.order() == npyz::Order::Fortran;
    let file = npyz::NpyFile::with_header(header, rest);
    use npyz::TypeChar::{Bool, Float, Int, Uint};
    let data = match (ts.type_char(), itemsize) {
        (Float, 4) => elements(file, |v: f32| v)?,
        (Float, 8) => elements(file, |v: f64| v as f32)?,
        (Float, _) => elements(file, |v: half::f16| v.to_f32())?,
        (Int, 1) => elements(file, |v: i8| v as f32)?,
        (Int, 2) => elements(file, |v: i16| v as f32)?,
        (Int, 4) => elements(file, |v: i32| v as f32)?,
        (Int, _) => elements(file, |v: i64| v as f32)?,
        (Uint, 1) => elements(file, |v: u8| v as f32)?,
        (Uint, 2) => elements(file, |v: u16| v as f32)?,
        (Uint, 4) => elements(file, |v: u32| v as f32)?,
        (Uint, _) => elements(file, |v: u64| v as f32)?,
        (Bool, _) => elements(file, |v: bool| v as u8 as f32)?,
        _ => unreachable!("dtype_name admits these kinds only"),
    };
    let data = if fortran { fortran_to_c(&shape, &data) } else { data };
    let converted_from = (name != "float32").then_some(name);
    Ok((shape, data, NpyInfo { converted_from }))
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

/// Serialises an f32 array as a `.npy` image (little-endian, C order).
pub fn to_bytes(shape: &[usize], data: &[f32]) -> Vec<u8> {
    bytes_of(shape, data)
}

/// Serialises an array of any element type npyz writes (little-endian, C order).
fn bytes_of<T: npyz::AutoSerialize + Copy>(shape: &[usize], data: &[T]) -> Vec<u8> {
    let shape: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
    let mut out = std::io::Cursor::new(Vec::with_capacity(128 + std::mem::size_of_val(data)));
    let written = (|| -> std::io::Result<()> {
        use npyz::WriterBuilder;
        let mut w = npyz::WriteOptions::<T>::new().default_dtype().shape(&shape).writer(&mut out).begin_nd()?;
        w.extend(data.iter().copied())?;
        w.finish()
    })();
    // Writing into memory fails only if the data and the shape disagree: a caller's bug.
    written.expect("an in-memory .npy write of data matching its shape");
    out.into_inner()
}

/// `path.npz:name` split into the archive and the array name; `None` for any other path.
fn archive_of(path: &std::path::Path) -> Option<(std::path::PathBuf, Option<String>)> {
    let text = path.to_str()?;
    if text.ends_with(".npz") {
        return Some((path.to_path_buf(), None));
    }
    let (file, name) = text.rsplit_once(':')?;
    (file.ends_with(".npz") && !name.is_empty() && !name.contains('/')).then(|| (file.into(), Some(name.to_string())))
}

fn io_error(path: &std::path::Path, source: std::io::Error) -> Error {
    Error::Io { path: path.display().to_string(), source }
}

/// Reads array `name` of a `.npz` archive (or its only array when `name` is `None`).
fn read_archive(path: &std::path::Path, name: Option<&str>) -> Result<Vec<u8>> {
    let shown = path.display();
    let file = std::fs::File::open(path).map_err(|e| io_error(path, e))?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| err(format!("{shown}: not a .npz archive: {e}")))?;
    let names: Vec<String> = zip
        .file_names()
        .map(|f| f.map(|f| f.into_owned()))
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| err(format!("{shown}: {e}")))?;
    let arrays: Vec<&str> = names.iter().filter_map(|f| f.strip_suffix(".npy")).collect();
    let name = match name {
        Some(n) => n.to_string(),
        None if arrays.len() == 1 => arrays[0].to_string(),
        None => {
            return Err(err(format!(
                "{shown} holds {} arrays ({}): name one as {shown}:NAME",
                arrays.len(),
                arrays.join(", ")
            )))
        }
    };
    let entry = zip
        .by_name(&format!("{name}.npy"))
        .map_err(|_| err(format!("{shown} has no array '{name}' (it has: {})", arrays.join(", "))))?;
    // no more than the entry declares (a corrupt or hostile archive cannot grow it), which
    // then goes through parse's own checks
    let declared = entry.size();
    let mut bytes = Vec::new();
    entry.take(declared).read_to_end(&mut bytes).map_err(|e| err(format!("{shown}:{name}: {e}")))?;
    Ok(bytes)
}

/// Reads a `.npy` file, or an array of a `.npz` archive (`path.npz:name`, or `path.npz` with
/// one array).
pub fn read(path: &std::path::Path) -> Result<(Vec<usize>, Vec<f32>, NpyInfo)> {
    let bytes = match archive_of(path) {
        Some((file, name)) => read_archive(&file, name.as_deref())?,
        None => std::fs::read(path).map_err(|e| io_error(path, e))?,
    };
    parse(&bytes).map_err(|e| match e {
        Error::Npy(m) => Error::Npy(format!("{}: {m}", path.display())),
        other => other,
    })
}

/// Writes a `.npy` file, or a `.npz` archive of one array when the path ends in `.npz`
/// (`path.npz:name` names the array; default `arr_0`).
pub fn write(path: &std::path::Path, shape: &[usize], data: &[f32]) -> Result<()> {
    write_any(path, shape, data)
}

/// [`write()`] for int64 data (indices, as PyTorch returns them).
pub fn write_i64(path: &std::path::Path, shape: &[usize], data: &[i64]) -> Result<()> {
    write_any(path, shape, data)
}

fn write_any<T: npyz::AutoSerialize + Copy>(path: &std::path::Path, shape: &[usize], data: &[T]) -> Result<()> {
    match archive_of(path) {
        Some((file, name)) => write_npz(&file, &[(name.as_deref().unwrap_or("arr_0"), shape, data)]),
        None => std::fs::write(path, bytes_of(shape, data)).map_err(|e| io_error(path, e)),
    }
}

/// Writes a `.npz` archive (stored, as `np.savez`) of `(name, shape, data)` arrays.
pub fn write_npz<T: npyz::AutoSerialize + Copy>(
    file: &std::path::Path,
    arrays: &[(&str, &[usize], &[T])],
) -> Result<()> {
    let out = std::fs::File::create(file).map_err(|e| io_error(file, e))?;
    let mut zip = zip::ZipWriter::new(out);
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let zip_error = |e: zip::result::ZipError| err(format!("{}: {e}", file.display()));
    for (name, shape, data) in arrays {
        zip.start_file(format!("{name}.npy"), options).map_err(zip_error)?;
        zip.write_all(&bytes_of(shape, data)).map_err(|e| io_error(file, e))?;
    }
    zip.finish().map_err(zip_error)?;
    Ok(())
}

/// Whether `path` names a `.npz` archive (`path.npz` or `path.npz:name`).
pub fn is_archive(path: &std::path::Path) -> bool {
    archive_of(path).is_some()
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
        for shape in ["(1000000, 1000000)", "(4294967296, 4294967296)", "(18446744073709551615, 2)"] {
            let e = parse(&file("<f4", false, shape, &[0; 8])).unwrap_err();
            assert!(matches!(&e, Error::Npy(m) if m.contains("bytes") || m.contains("overflows")), "{shape}: {e:?}");
        }
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
        for bad in ["<c8", "|S8", "<M8[s]", "<f16"] {
            assert!(parse(&file(bad, false, "(1,)", &[0; 8])).is_err(), "{bad}");
        }
    }

    /// Integer and bool arrays (labels, masks, images saved as uint8) are converted to f32 and
    /// named; f16 subnormals, NaN and ∞ convert exactly.
    #[test]
    fn integers_bools_and_halves_are_converted() {
        let i8s: Vec<u8> = [-3i8, 0, 127].iter().map(|&v| v as u8).collect();
        assert_eq!(parse(&file("|i1", false, "(3,)", &i8s)).unwrap().1, vec![-3.0, 0.0, 127.0]);
        let u16s: Vec<u8> = [65535u16, 7].iter().flat_map(|v| v.to_be_bytes()).collect();
        let (_, d, info) = parse(&file(">u2", false, "(2,)", &u16s)).unwrap();
        assert_eq!((d, info.converted_from), (vec![65535.0, 7.0], Some("uint16")));
        let i64s: Vec<u8> = [-(1i64 << 40), 5].iter().flat_map(|v| v.to_le_bytes()).collect();
        let (_, d, info) = parse(&file("<i8", false, "(2,)", &i64s)).unwrap();
        assert_eq!((d, info.converted_from), (vec![-(2f32.powi(40)), 5.0], Some("int64")));
        let (_, d, info) = parse(&file("|b1", false, "(2,)", &[1, 0])).unwrap();
        assert_eq!((d, info.converted_from), (vec![1.0, 0.0], Some("bool")));
        let halves: Vec<u8> = [0x0001u16, 0x7e00, 0x7c00, 0xc000].iter().flat_map(|v| v.to_le_bytes()).collect();
        let d = parse(&file("<f2", false, "(4,)", &halves)).unwrap().1;
        assert_eq!((d[0], d[2], d[3]), (2f32.powi(-24), f32::INFINITY, -2.0));
        assert!(d[1].is_nan());
    }

    /// `.npz` archives: `path.npz:name` reads one array of several, a bare `path.npz` its only
    /// array; a missing name lists the names; writing `.npz` makes an archive NumPy reads.
    #[test]
    fn npz_archives_by_name() {
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path().to_path_buf();
        std::fs::create_dir_all(&dir).unwrap();
        let two = dir.join("two.npz");
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&two).unwrap());
        let deflated = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        for (name, data) in [("x", [1f32, 2.0]), ("w", [3.0, 4.0])] {
            zip.start_file(format!("{name}.npy"), deflated).unwrap();
            zip.write_all(&to_bytes(&[2], &data)).unwrap();
        }
        zip.finish().unwrap();
        let at = |s: &str| std::path::PathBuf::from(format!("{}:{s}", two.display()));
        assert_eq!(read(&at("w")).unwrap().1, vec![3.0, 4.0]);
        assert_eq!(read(&at("x")).unwrap().1, vec![1.0, 2.0]);
        let e = read(&at("y")).unwrap_err().to_string();
        assert!(e.contains("no array 'y'") && e.contains("x, w"), "{e}");
        let e = read(&two).unwrap_err().to_string();
        assert!(e.contains("holds 2 arrays"), "{e}");
        let one = dir.join("one.npz");
        write(&std::path::PathBuf::from(format!("{}:out", one.display())), &[1, 2], &[5.0, 6.0]).unwrap();
        assert_eq!(read(&one).unwrap(), (vec![1, 2], vec![5.0, 6.0], NpyInfo { converted_from: None }));
        write(&dir.join("default.npz"), &[1], &[7.0]).unwrap();
        assert_eq!(read(&at("x").with_file_name("default.npz:arr_0")).unwrap().1, vec![7.0]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A v2/v3 header may declare up to 4 GiB: checked against the bytes present before the
    /// header is read (npyz would allocate the declared length first).
    #[test]
    fn a_huge_declared_header_is_an_error_not_an_allocation() {
        for version in [2u8, 3] {
            let mut bytes = b"\x93NUMPY".to_vec();
            bytes.extend([version, 0, 0xff, 0xff, 0xff, 0xff, b'{', b'}']);
            let e = parse(&bytes).unwrap_err();
            assert!(matches!(&e, Error::Npy(m) if m.contains("header claims")), "{e:?}");
        }
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = to_bytes(&[2, 3], &[1.0; 6]);
        for cut in 0..bytes.len() {
            assert!(parse(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }
}

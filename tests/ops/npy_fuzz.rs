//! A seeded fuzzer for the `.npy` reader: valid files of every supported dtype, then byte
//! flips, truncations, insertions, header rewrites (huge shapes, odd versions) and pure
//! garbage. The reader must never panic, never return data that disagrees with its shape,
//! and never allocate more than the input could describe. 1,000,000 executions per run;
//! `WGCONV_FUZZ_EXECS=N` for more.

use wgconv::npy::{parse, to_bytes};
use wgconv::verify::SplitMix64;

fn header_file(descr: &str, shape: &str, item: usize, n: usize, version: u8) -> Vec<u8> {
    let mut h = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    let pre = if version == 1 { 10 } else { 12 };
    while (pre + h.len() + 1) % 64 != 0 {
        h.push(' ');
    }
    h.push('\n');
    let mut out = b"\x93NUMPY".to_vec();
    out.push(version);
    out.push(0);
    if version == 1 {
        out.extend_from_slice(&(h.len() as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&(h.len() as u32).to_le_bytes());
    }
    out.extend_from_slice(h.as_bytes());
    out.extend(std::iter::repeat_n(0x3c, item * n));
    out
}

/// A valid bool file (bytes 0 and 1; npyz refuses other values, as an error).
fn bools() -> Vec<u8> {
    let mut b = header_file("|b1", "(7,)", 1, 7, 1);
    let n = b.len();
    b[n - 7..].copy_from_slice(&[1, 0, 0, 1, 1, 0, 1]);
    b
}

fn seeds() -> Vec<Vec<u8>> {
    vec![
        to_bytes(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
        to_bytes(&[1], &[7.0]),
        to_bytes(&[], &[1.5]),
        header_file("<f8", "(3, 2)", 8, 6, 1),
        header_file("<f2", "(5,)", 2, 5, 2),
        header_file("<f4", "(1, 1, 2, 2)", 4, 4, 3),
        header_file("<f4", "(0, 3)", 4, 0, 1),
        header_file("|u1", "(4, 5)", 1, 20, 1),
        bools(),
        header_file(">i8", "(2, 2)", 8, 4, 1),
        header_file("<i2", "(9,)", 2, 9, 2),
    ]
}

fn mutate(rng: &mut SplitMix64, base: &[u8]) -> Vec<u8> {
    let mut b = base.to_vec();
    match rng.range(0, 7) {
        0 => {
            for _ in 0..rng.range(1, 8) {
                if !b.is_empty() {
                    let i = (rng.next_u64() % b.len() as u64) as usize;
                    b[i] = rng.next_u64() as u8;
                }
            }
        }
        1 => b.truncate((rng.next_u64() % (b.len() as u64 + 1)) as usize),
        2 => {
            let i = (rng.next_u64() % (b.len() as u64 + 1)) as usize;
            let extra: Vec<u8> = (0..rng.range(1, 40)).map(|_| rng.next_u64() as u8).collect();
            b.splice(i..i, extra);
        }
        3 => {
            // Rewrite the shape with huge or odd dimensions.
            let shapes = [
                "(1000000000000,)",
                "(4294967296, 4294967296)",
                "(-1,)",
                "(3,,)",
                "(",
                "()",
                "(18446744073709551615, 2)",
                "(1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33)",
            ];
            let s = shapes[rng.range(0, shapes.len() as u32 - 1) as usize];
            let text = String::from_utf8_lossy(&b).into_owned();
            if let (Some(i), Some(j)) = (text.find("'shape': "), text.find(", }")) {
                if i < j {
                    b = [&b[..i + 9], s.as_bytes(), &b[j..]].concat();
                }
            }
        }
        4 => {
            // Lie about the header length.
            if b.len() > 10 {
                let v = rng.next_u64() as u16;
                b[8..10].copy_from_slice(&v.to_le_bytes());
            }
        }
        5 => {
            if b.len() > 7 {
                b[6] = rng.range(0, 5) as u8;
            }
        }
        6 => b = (0..rng.range(0, 300)).map(|_| rng.next_u64() as u8).collect(),
        _ => {
            let descrs = ["'<i4'", "'>f4'", "'|u1'", "'<c8'", "'<f16'", "\"<f4\"", "''", "'<f4"];
            let d = descrs[rng.range(0, descrs.len() as u32 - 1) as usize];
            let text = String::from_utf8_lossy(&b).into_owned();
            if let Some(i) = text.find("'<f") {
                b = [&b[..i], d.as_bytes(), &b[(i + 5).min(b.len())..]].concat();
            }
        }
    }
    b
}

#[test]
fn the_npy_reader_survives_arbitrary_bytes() {
    let execs: u64 = std::env::var("WGCONV_FUZZ_EXECS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let seeds = seeds();
    for s in &seeds {
        parse(s).expect("every seed file is valid");
    }
    let mut rng = SplitMix64::new(0xf022);
    let (mut ok, mut err) = (0u64, 0u64);
    for i in 0..execs {
        let base = &seeds[(i % seeds.len() as u64) as usize];
        let mut input = mutate(&mut rng, base);
        if rng.range(0, 3) == 0 {
            input = mutate(&mut rng, &input);
        }
        let result = std::panic::catch_unwind(|| parse(&input));
        match result {
            Err(_) => panic!("parse panicked on input {i}: {:?}", &input[..input.len().min(120)]),
            Ok(Ok((shape, data, _))) => {
                let n: usize = shape.iter().product();
                assert_eq!(n, data.len(), "input {i}");
                // one-byte integers and bools widen 4× to f32: nothing larger can come out.
                assert!(
                    data.len() * 4 <= input.len() * 4 + 4,
                    "input {i}: {} values from {} bytes",
                    data.len(),
                    input.len()
                );
                ok += 1;
            }
            Ok(Err(e)) => {
                assert!(matches!(e, wgconv::Error::Npy(_)), "{e:?}");
                err += 1;
            }
        }
    }
    eprintln!("npy fuzz: {execs} executions, {ok} parsed, {err} rejected with an error, 0 panics");
    assert_eq!(ok + err, execs);
    assert!(err > execs / 2 && ok > 1000, "the mutations exercise both paths: {ok} ok, {err} err");
}

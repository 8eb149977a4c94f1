//! Parsing of the command-line value forms shared by `wgconv` subcommands.

use crate::params::Padding;

/// `"2"` → `[2, 2]`, `"2,3"` → `[2, 3]`.
pub fn parse_pair(flag: &str, text: &str) -> Result<[u32; 2], String> {
    let vals = parse_list(flag, text)?;
    match vals.as_slice() {
        [v] => Ok([*v, *v]),
        [a, b] => Ok([*a, *b]),
        _ => Err(format!("--{flag} takes one value or two comma-separated values, got '{text}'")),
    }
}

/// `same`, `valid`, `P`, `PH,PW` or `T,L,B,R` (ONNX order: top, left, bottom, right).
pub fn parse_padding(text: &str) -> Result<Padding, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "same" => return Ok(Padding::Same),
        "valid" => return Ok(Padding::Valid),
        _ => {}
    }
    let vals = parse_list("padding", text)?;
    match vals.as_slice() {
        [p] => Ok(Padding::Symmetric([*p, *p])),
        [h, w] => Ok(Padding::Symmetric([*h, *w])),
        [t, l, b, r] => Ok(Padding::Explicit { top: *t, left: *l, bottom: *b, right: *r }),
        _ => Err(format!("--padding takes same, valid, P, PH,PW or T,L,B,R; got '{text}'")),
    }
}

fn parse_list(flag: &str, text: &str) -> Result<Vec<u32>, String> {
    text.split(',')
        .map(|p| {
            p.trim()
                .parse::<u32>()
                .map_err(|_| format!("--{flag}: '{}' is not a non-negative integer (in '{text}')", p.trim()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        assert_eq!(parse_pair("stride", "2").unwrap(), [2, 2]);
        assert_eq!(parse_pair("stride", "2, 3").unwrap(), [2, 3]);
        assert!(parse_pair("stride", "1,2,3").is_err());
        assert!(parse_pair("stride", "-1").is_err());
        assert_eq!(parse_padding("SAME").unwrap(), Padding::Same);
        assert_eq!(parse_padding("valid").unwrap(), Padding::Valid);
        assert_eq!(parse_padding("1").unwrap(), Padding::Symmetric([1, 1]));
        assert_eq!(parse_padding("1,2").unwrap(), Padding::Symmetric([1, 2]));
        assert_eq!(parse_padding("1,2,3,4").unwrap(), Padding::Explicit { top: 1, left: 2, bottom: 3, right: 4 });
        assert!(parse_padding("1,2,3").is_err());
        assert!(parse_padding("x").is_err());
    }
}

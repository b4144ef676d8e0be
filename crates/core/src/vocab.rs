//! One vocabulary for every option word (resize policy, filter, storage,
//! dtype, data format …): each word is defined once, by the `strum` derive
//! on its enum, and parsed here, by the command line, the Python binding
//! and the library alike, so that an error always lists the same choices.

use std::str::FromStr;

pub use strum::VariantNames;

/// Parses `value` as a `T`; the error is a sentence that names the
/// setting and every choice: `resize must be one of stretch, letterbox,
/// crop; got "squash"`.
pub fn parse_choice<T: FromStr + VariantNames>(name: &str, value: &str) -> Result<T, String> {
    value.parse().map_err(|_| {
        format!(
            "{name} must be one of {}; got {value:?}",
            T::VARIANTS.join(", ")
        )
    })
}

/// A size in bytes from `2GB`, `512MiB`, `100kB` (decimal and binary
/// units) or a plain number.
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size such as 2GB, 512MiB or 1000000"))?;
    let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" | "k" => 1e3,
        "mb" | "m" => 1e6,
        "gb" | "g" => 1e9,
        "tb" | "t" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tib" => 1024f64.powi(4),
        other => {
            return Err(format!(
                "unknown unit {other:?} in {s:?} (B, kB, MB, GB, TB, KiB, MiB, GiB, TiB)"
            ))
        }
    };
    let bytes = (value * scale).round();
    if !(1.0..9e18).contains(&bytes) {
        return Err(format!("{s:?} must be at least one byte"));
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_with_units() {
        assert_eq!(parse_bytes("2GB").unwrap(), 2_000_000_000);
        assert_eq!(parse_bytes("512 MiB").unwrap(), 512 << 20);
        assert_eq!(parse_bytes("1000").unwrap(), 1000);
        assert!(
            parse_bytes("0").is_err() && parse_bytes("2XB").is_err() && parse_bytes("GB").is_err()
        );
    }
    use crate::SourceFormat;

    #[test]
    fn errors_list_every_choice() {
        let err = parse_choice::<SourceFormat>("format", "xml").unwrap_err();
        assert_eq!(
            err,
            "format must be one of folder, csv, coco, voc, manifest; got \"xml\""
        );
        assert_eq!(
            parse_choice::<SourceFormat>("format", "voc").unwrap(),
            SourceFormat::Voc
        );
    }
}

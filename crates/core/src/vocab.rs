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

#[cfg(test)]
mod tests {
    use super::*;
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

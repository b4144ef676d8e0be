//! COCO instances JSON: `images`, `annotations` (`bbox = [x, y, w, h]`) and
//! `categories`.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;
use stokehold_core::{Finding, FindingKind};

use crate::draft::{Candidate, Draft, RawBox};
use crate::Error;

#[derive(Deserialize)]
struct Coco {
    images: Vec<Image>,
    #[serde(default)]
    annotations: Vec<Annotation>,
    categories: Vec<Category>,
}

#[derive(Deserialize)]
struct Image {
    id: u64,
    file_name: String,
}

#[derive(Deserialize)]
struct Annotation {
    #[serde(default)]
    id: Option<u64>,
    image_id: u64,
    category_id: u64,
    #[serde(default)]
    bbox: Option<Vec<f64>>,
    #[serde(default)]
    iscrowd: u8,
}

#[derive(Deserialize)]
struct Category {
    id: u64,
    name: String,
}

/// Reads a COCO instances file. Classes are the categories in id order;
/// `file_name` is resolved against `image_root`, or the JSON's folder. A
/// sample's class is that of its largest non-crowd box.
pub(crate) fn read(
    path: &Path,
    image_root: Option<&Path>,
    limits: &stokehold_core::Limits,
) -> Result<Draft, Error> {
    let invalid = |reason: String| Error::InvalidSource {
        path: path.into(),
        reason,
    };
    let bytes =
        stokehold_core::fsutil::read_capped(path, limits.max_source_bytes, "max_source_bytes")
            .map_err(|e| Error::Io {
                path: path.into(),
                error: e.into(),
            })?;
    let coco: Coco = serde_json::from_slice(&bytes)
        .map_err(|e| invalid(format!("not a COCO instances file: {e}")))?;

    let mut categories = coco.categories;
    categories.sort_by_key(|c| c.id);
    if let Some(w) = categories.windows(2).find(|w| w[0].id == w[1].id) {
        return Err(invalid(format!("category id {} appears twice", w[0].id)));
    }
    let cat_index: HashMap<u64, u32> = categories
        .iter()
        .enumerate()
        .map(|(i, c)| (c.id, i as u32))
        .collect();

    let base = image_root
        .map(Path::to_path_buf)
        .unwrap_or_else(|| path.parent().map(Path::to_path_buf).unwrap_or_default());
    let mut draft = Draft::default();
    let mut by_id: HashMap<u64, usize> = HashMap::with_capacity(coco.images.len());
    for img in coco.images {
        if by_id.contains_key(&img.id) {
            draft.findings.push(
                Finding::skip(
                    FindingKind::InvalidAnnotation,
                    path,
                    format!(
                        "image id {} appears twice; the later one is skipped",
                        img.id
                    ),
                )
                .at(format!("image {}", img.id)),
            );
            continue;
        }
        let mut c = Candidate::new(base.join(&img.file_name), None);
        c.label_from_boxes = true;
        by_id.insert(img.id, draft.candidates.len());
        draft.candidates.push(c);
    }
    for (n, ann) in coco.annotations.into_iter().enumerate() {
        let at = match ann.id {
            Some(id) => format!("annotation {id}"),
            None => format!("annotations[{n}]"),
        };
        let Some(&ci) = by_id.get(&ann.image_id) else {
            draft.findings.push(
                Finding::skip(
                    FindingKind::InvalidAnnotation,
                    path,
                    format!("image_id {} is not among the images", ann.image_id),
                )
                .at(at),
            );
            continue;
        };
        let cand = &mut draft.candidates[ci];
        if cand.problem.is_some() {
            continue;
        }
        let Some(&label) = cat_index.get(&ann.category_id) else {
            cand.problem = Some(
                Finding::skip(
                    FindingKind::UnknownClass,
                    &cand.path,
                    format!(
                        "category_id {} is not among the categories",
                        ann.category_id
                    ),
                )
                .at(at),
            );
            continue;
        };
        match ann.bbox.as_deref() {
            Some(&[x, y, w, h]) => cand.boxes.push(RawBox {
                bbox: [x, y, x + w, y + h],
                label,
                iscrowd: ann.iscrowd != 0,
                difficult: false,
            }),
            other => {
                cand.problem = Some(
                    Finding::skip(
                        FindingKind::InvalidAnnotation,
                        &cand.path,
                        format!("bbox {other:?} is not [x, y, w, h]"),
                    )
                    .at(at),
                );
            }
        }
    }
    draft.classes = categories.into_iter().map(|c| c.name).collect();
    Ok(draft)
}

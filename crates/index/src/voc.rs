//! Pascal VOC: `Annotations/*.xml` beside `JPEGImages/`.

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use stokehold_core::{Finding, FindingKind};

use crate::draft::{Candidate, Draft, RawBox};
use crate::Error;

struct Parsed {
    filename: String,
    /// `(class name, box, difficult)`.
    objects: Vec<(String, [f64; 4], bool)>,
}

/// Reads every `Annotations/*.xml` in sorted order. Images are looked up in
/// `image_root`, or `JPEGImages/`. Classes are the object names, sorted.
///
/// VOC coordinates are 1-based pixel indices with inclusive ends; they are
/// converted to stokehold's continuous coordinates by subtracting 1 from
/// `xmin` and `ymin` (a box `1,1,W,H` covers the whole `W × H` image).
/// A sample's class is that of its largest box.
pub(crate) fn read(
    root: &Path,
    image_root: Option<&Path>,
    limits: &stokehold_core::Limits,
    pool: &rayon::ThreadPool,
    control: &stokehold_core::Control,
) -> Result<Draft, Error> {
    let ann_dir = root.join("Annotations");
    let images = image_root.map_or_else(|| root.join("JPEGImages"), Path::to_path_buf);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&ann_dir)
        .map_err(|e| Error::Io {
            path: ann_dir.clone(),
            error: e,
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x.eq_ignore_ascii_case("xml")))
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    files.sort();
    let parsed: Vec<Option<Result<Parsed, Finding>>> = pool.install(|| {
        files
            .par_iter()
            .map(|f| {
                if control.is_cancelled() {
                    return None;
                }
                let invalid = |msg: String| Finding::skip(FindingKind::InvalidAnnotation, f, msg);
                let result = stokehold_core::fsutil::read_capped(
                    f,
                    limits.max_source_bytes,
                    "max_source_bytes",
                )
                .map_err(|e| invalid(format!("cannot read: {e}")))
                .and_then(|bytes| {
                    String::from_utf8(bytes).map_err(|e| {
                        invalid(format!(
                            "not UTF-8 text (invalid byte at offset {})",
                            e.utf8_error().valid_up_to()
                        ))
                    })
                })
                .and_then(|text| parse(&text).map_err(invalid));
                Some(result)
            })
            .collect()
    });
    if control.is_cancelled() {
        return Err(Error::Cancelled);
    }
    let parsed: Vec<Result<Parsed, Finding>> = parsed.into_iter().flatten().collect();

    let mut names: Vec<&str> = parsed
        .iter()
        .flatten()
        .flat_map(|p| p.objects.iter().map(|o| o.0.as_str()))
        .collect();
    names.sort_unstable();
    names.dedup();
    let classes: Vec<String> = names.iter().map(|s| s.to_string()).collect();

    let mut draft = Draft::default();
    for result in &parsed {
        match result {
            Err(f) => draft.findings.push(f.clone()),
            Ok(p) => {
                let mut c = Candidate::new(images.join(&p.filename), None);
                c.label_from_boxes = true;
                c.boxes = p
                    .objects
                    .iter()
                    .map(|(name, bbox, difficult)| RawBox {
                        bbox: *bbox,
                        label: classes
                            .binary_search(name)
                            .expect("every name is in the class list")
                            as u32,
                        iscrowd: false,
                        difficult: *difficult,
                    })
                    .collect();
                draft.candidates.push(c);
            }
        }
    }
    draft.classes = classes;
    Ok(draft)
}

fn parse(text: &str) -> Result<Parsed, String> {
    let doc = roxmltree::Document::parse(text).map_err(|e| format!("not valid XML: {e}"))?;
    let root = doc.root_element();
    let filename = text_of(root, "filename")
        .filter(|s| !s.is_empty())
        .ok_or("no <filename>")?
        .to_owned();
    let mut objects = Vec::new();
    for (i, obj) in root
        .children()
        .filter(|c| c.has_tag_name("object"))
        .enumerate()
    {
        let name = text_of(obj, "name")
            .filter(|s| !s.is_empty())
            .ok_or(format!("object {i} has no <name>"))?;
        let bndbox = child(obj, "bndbox").ok_or(format!("object {i} has no <bndbox>"))?;
        let mut v = [0.0; 4];
        for (slot, tag) in v.iter_mut().zip(["xmin", "ymin", "xmax", "ymax"]) {
            let t = text_of(bndbox, tag).ok_or(format!("object {i} has no <{tag}>"))?;
            *slot = t
                .parse()
                .map_err(|_| format!("object {i}: <{tag}> {t:?} is not a number"))?;
        }
        let difficult = text_of(obj, "difficult").is_some_and(|d| d == "1");
        objects.push((
            name.to_owned(),
            [v[0] - 1.0, v[1] - 1.0, v[2], v[3]],
            difficult,
        ));
    }
    Ok(Parsed { filename, objects })
}

fn child<'a, 'i>(node: roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
    node.children().find(|c| c.has_tag_name(name))
}

fn text_of<'a>(node: roxmltree::Node<'a, '_>, name: &str) -> Option<&'a str> {
    child(node, name).and_then(|c| c.text()).map(str::trim)
}

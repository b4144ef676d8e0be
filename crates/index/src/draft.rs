//! What every source reader produces, and the pipeline shared by all of
//! them: class remapping, duplicate detection, parallel header probing, box
//! validation and label derivation.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use stokehold_core::{BoxAnn, Control, Finding, FindingKind, Manifest, Sample};

use crate::{probe, Error, IndexOptions};

/// A box as read from the source, before validation.
#[derive(Debug, Clone)]
pub(crate) struct RawBox {
    pub bbox: [f64; 4],
    /// Index into [`Draft::classes`].
    pub label: u32,
    pub iscrowd: bool,
    pub difficult: bool,
}

/// A sample as read from the source, before its file is probed.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    pub path: PathBuf,
    /// Index into [`Draft::classes`].
    pub label: Option<u32>,
    /// Take the label from the largest box when `label` is `None`.
    pub label_from_boxes: bool,
    pub boxes: Vec<RawBox>,
    /// A problem the reader found; the sample is skipped with it.
    pub problem: Option<Finding>,
}

impl Candidate {
    pub fn new(path: PathBuf, label: Option<u32>) -> Self {
        Candidate {
            path,
            label,
            label_from_boxes: false,
            boxes: Vec::new(),
            problem: None,
        }
    }
}

/// A source's content in its natural class order.
#[derive(Debug, Default)]
pub(crate) struct Draft {
    pub classes: Vec<String>,
    pub candidates: Vec<Candidate>,
    /// Problems not tied to one candidate (a bad CSV row, an orphan annotation).
    pub findings: Vec<Finding>,
}

/// Re-checks a loaded manifest as a source: its files are probed again.
pub(crate) fn from_manifest(m: Manifest) -> Draft {
    let candidates = m
        .samples
        .into_iter()
        .map(|s| Candidate {
            boxes: s
                .boxes
                .iter()
                .map(|b| RawBox {
                    bbox: b.bbox.map(f64::from),
                    label: b.label,
                    iscrowd: b.iscrowd,
                    difficult: b.difficult,
                })
                .collect(),
            ..Candidate::new(s.path, s.label)
        })
        .collect();
    Draft {
        classes: m.classes,
        candidates,
        findings: Vec::new(),
    }
}

impl Draft {
    /// Runs the shared pipeline on `pool` and returns the manifest (source
    /// unset).
    pub fn resolve(
        mut self,
        options: &IndexOptions,
        pool: &rayon::ThreadPool,
        control: &Control,
    ) -> Result<Manifest, Error> {
        let classes = self.remap_classes(options.classes.as_deref());
        self.mark_duplicates();

        control.start(self.candidates.len() as u64);
        let limits = &options.limits;
        let probes: Vec<Option<Result<_, Finding>>> = pool.install(|| {
            self.candidates
                .par_iter()
                .map(|c| {
                    if control.is_cancelled() {
                        return None;
                    }
                    let result = match &c.problem {
                        Some(f) => Err(f.clone()),
                        None => probe(&c.path, limits)
                            .map_err(|(kind, msg)| Finding::skip(kind, &c.path, msg)),
                    };
                    control.advance(1);
                    Some(result)
                })
                .collect()
        });
        if control.is_cancelled() {
            return Err(Error::Cancelled);
        }

        let mut manifest = Manifest::new(classes);
        manifest.findings = self.findings;
        manifest.samples.reserve(self.candidates.len());
        for (cand, probed) in self.candidates.into_iter().zip(probes) {
            match probed.expect("not cancelled, so every candidate was probed") {
                Err(finding) => manifest.findings.push(finding),
                Ok(crate::Probe {
                    width,
                    height,
                    format,
                    ..
                }) => {
                    let boxes = validate_boxes(
                        &cand.path,
                        &cand.boxes,
                        width,
                        height,
                        &mut manifest.findings,
                    );
                    let label = match cand.label {
                        None if cand.label_from_boxes => largest_box_label(&boxes),
                        l => l,
                    };
                    manifest.samples.push(Sample {
                        path: cand.path,
                        label,
                        width,
                        height,
                        format,
                        boxes,
                    });
                }
            }
        }
        manifest.samples.shrink_to_fit();
        Ok(manifest)
    }

    /// Maps labels to the user's class list when one is given; a label
    /// outside it makes the sample an `unknown_class` finding.
    fn remap_classes(&mut self, wanted: Option<&[String]>) -> Vec<String> {
        let Some(wanted) = wanted else {
            return std::mem::take(&mut self.classes);
        };
        let map: Vec<Option<u32>> = self
            .classes
            .iter()
            .map(|name| wanted.iter().position(|w| w == name).map(|i| i as u32))
            .collect();
        let classes = &self.classes;
        for c in &mut self.candidates {
            if c.problem.is_some() {
                continue;
            }
            let unknown = c
                .label
                .into_iter()
                .chain(c.boxes.iter().map(|b| b.label))
                .find(|&l| map[l as usize].is_none());
            if let Some(l) = unknown {
                c.problem = Some(Finding::skip(
                    FindingKind::UnknownClass,
                    &c.path,
                    format!(
                        "class {:?} is not among the given classes",
                        classes[l as usize]
                    ),
                ));
                continue;
            }
            c.label = c.label.and_then(|l| map[l as usize]);
            for b in &mut c.boxes {
                b.label = map[b.label as usize].expect("checked above");
            }
        }
        wanted.to_vec()
    }

    /// Skips every candidate whose path was already seen.
    fn mark_duplicates(&mut self) {
        let mut seen: HashSet<&Path> = HashSet::with_capacity(self.candidates.len());
        let mut dups = Vec::new();
        for (i, c) in self.candidates.iter().enumerate() {
            if !seen.insert(&c.path) {
                dups.push(i);
            }
        }
        for i in dups {
            let c = &mut self.candidates[i];
            if c.problem.is_none() {
                c.problem = Some(Finding::skip(
                    FindingKind::DuplicatePath,
                    &c.path,
                    "the same image appears earlier in the source; this one is skipped",
                ));
            }
        }
    }
}

/// Clips boxes to the image and drops those left without area, recording a
/// finding for each change.
fn validate_boxes(
    path: &Path,
    raw: &[RawBox],
    width: u32,
    height: u32,
    findings: &mut Vec<Finding>,
) -> Vec<BoxAnn> {
    let (w, h) = (f64::from(width), f64::from(height));
    let mut boxes = Vec::with_capacity(raw.len());
    for (i, b) in raw.iter().enumerate() {
        let [x0, y0, x1, y1] = b.bbox;
        if !b.bbox.iter().all(|v| v.is_finite()) {
            findings.push(
                Finding::repair(
                    FindingKind::BoxDegenerate,
                    path,
                    format!("box {i} {:?} has a non-finite coordinate; dropped", b.bbox),
                )
                .at(format!("box {i}")),
            );
            continue;
        }
        let clipped = [
            x0.clamp(0.0, w),
            y0.clamp(0.0, h),
            x1.clamp(0.0, w),
            y1.clamp(0.0, h),
        ];
        if clipped[2] <= clipped[0] || clipped[3] <= clipped[1] {
            findings.push(
                Finding::repair(
                    FindingKind::BoxDegenerate,
                    path,
                    format!(
                        "box {i} {:?} has no area inside the {width}×{height} image; dropped",
                        b.bbox
                    ),
                )
                .at(format!("box {i}")),
            );
            continue;
        }
        if clipped != b.bbox {
            findings.push(
                Finding::repair(
                    FindingKind::BoxClipped,
                    path,
                    format!("box {i} {:?} reaches outside the {width}×{height} image; clipped to {clipped:?}", b.bbox),
                )
                .at(format!("box {i}")),
            );
        }
        boxes.push(BoxAnn {
            bbox: clipped.map(|v| v as f32),
            label: b.label,
            iscrowd: b.iscrowd,
            difficult: b.difficult,
        });
    }
    boxes
}

/// The class of the largest box, ignoring crowd boxes unless there are only
/// crowd boxes; the first one wins a tie.
fn largest_box_label(boxes: &[BoxAnn]) -> Option<u32> {
    let pick = |crowd_ok: bool| {
        boxes
            .iter()
            .filter(|b| crowd_ok || !b.iscrowd)
            .fold(None::<&BoxAnn>, |best, b| match best {
                Some(best) if best.area() >= b.area() => Some(best),
                _ => Some(b),
            })
            .map(|b| b.label)
    };
    pick(false).or_else(|| pick(true))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(bbox: [f64; 4]) -> RawBox {
        RawBox {
            bbox,
            label: 0,
            iscrowd: false,
            difficult: false,
        }
    }

    #[test]
    fn boxes_are_clipped_dropped_and_reported() {
        let mut findings = Vec::new();
        let boxes = validate_boxes(
            Path::new("x.jpg"),
            &[
                raw([1.0, 2.0, 3.0, 4.0]),
                raw([-5.0, 2.0, 120.0, 4.0]),
                raw([3.0, 3.0, 3.0, 9.0]),
                raw([f64::NAN, 0.0, 1.0, 1.0]),
                raw([200.0, 0.0, 300.0, 5.0]),
            ],
            100,
            50,
            &mut findings,
        );
        assert_eq!(
            boxes.iter().map(|b| b.bbox).collect::<Vec<_>>(),
            vec![[1.0, 2.0, 3.0, 4.0], [0.0, 2.0, 100.0, 4.0]]
        );
        let kinds: Vec<_> = findings.iter().map(|f| f.kind).collect();
        assert_eq!(
            kinds,
            [
                FindingKind::BoxClipped,
                FindingKind::BoxDegenerate,
                FindingKind::BoxDegenerate,
                FindingKind::BoxDegenerate
            ]
        );
        assert!(findings.iter().all(|f| !f.skipped));
    }

    #[test]
    fn largest_box_wins_and_crowds_only_as_last_resort() {
        let b = |area: f32, label, iscrowd| BoxAnn {
            iscrowd,
            ..BoxAnn::new([0.0, 0.0, area, 1.0], label)
        };
        assert_eq!(
            largest_box_label(&[b(2.0, 0, false), b(5.0, 1, false), b(5.0, 2, false)]),
            Some(1)
        );
        assert_eq!(
            largest_box_label(&[b(2.0, 0, false), b(9.0, 1, true)]),
            Some(0)
        );
        assert_eq!(largest_box_label(&[b(9.0, 1, true)]), Some(1));
        assert_eq!(largest_box_label(&[]), None);
    }
}

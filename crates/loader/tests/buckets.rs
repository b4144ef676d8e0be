//! Aspect-ratio buckets through the loader: one shape a batch, every
//! sample once an epoch, masks and boxes that match the pixels, exact
//! lengths, ranks and resume.

use std::collections::HashSet;
use std::sync::Arc;

use stokehold_loader::{
    Augment, Batch, Buckets, Dataset, DatasetOptions, Dtype, Error, Images, Layout, Loader,
    LoaderOptions, SampleData, Sequence, Shard, Source,
};

/// Sample `i` is landscape, portrait or square (by `i % 3`, a little
/// bigger with `i % 5`), filled with `i % 251`, with one box over its left half.
struct Shapes {
    n: usize,
    classes: Vec<String>,
}

fn shape_of(i: usize) -> [usize; 3] {
    let grow = (i % 5) * 4;
    match i % 3 {
        0 => [40 + grow, 80 + 2 * grow, 3],
        1 => [80 + 2 * grow, 40 + grow, 3],
        _ => [60 + grow, 60 + grow, 3],
    }
}

impl Source for Shapes {
    fn len(&self) -> usize {
        self.n
    }
    fn image_shape(&self) -> [usize; 3] {
        [0, 0, 3]
    }
    fn sample_shape(&self, index: usize) -> [usize; 3] {
        shape_of(index)
    }
    fn classes(&self) -> &[String] {
        &self.classes
    }
    fn stats(&self) -> Option<(Vec<f64>, Vec<f64>)> {
        None
    }
    fn load(&self, index: usize, out: &mut [u8]) -> Result<SampleData, Error> {
        let [h, w, c] = shape_of(index);
        assert_eq!(out.len(), h * w * c, "the sample's own size");
        out.fill((index % 251) as u8);
        Ok(SampleData {
            label: (index % 3) as i64,
            boxes: vec![[0.0, 0.0, (w / 2) as f32, h as f32]],
            box_labels: vec![7],
        })
    }
}

fn dataset(n: usize, opts: DatasetOptions) -> Arc<Dataset<Shapes>> {
    Arc::new(
        Dataset::new(
            Shapes {
                n,
                classes: vec!["wide".into(), "tall".into(), "square".into()],
            },
            opts,
        )
        .unwrap(),
    )
}

fn options(batch_size: usize) -> DatasetOptions {
    DatasetOptions {
        batch_size,
        dtype: Dtype::U8,
        normalize: false,
        buckets: Some(Buckets::Auto(3)),
        ..Default::default()
    }
}

fn epoch(ds: &Arc<Dataset<Shapes>>, threads: usize) -> Vec<Batch> {
    let mut l = Loader::new(
        Arc::clone(ds),
        LoaderOptions {
            threads,
            prefetch: 3,
            ..Default::default()
        },
    )
    .unwrap();
    l.epoch().map(Result::unwrap).collect()
}

fn indices(batches: &[Batch]) -> Vec<i64> {
    batches
        .iter()
        .flat_map(|b| b.sample_indices.clone())
        .collect()
}

#[test]
fn one_shape_a_batch_every_sample_once_with_masks_and_boxes_that_match() {
    let ds = dataset(101, options(8));
    let shapes = ds.bucket_shapes().unwrap().to_vec();
    assert_eq!(shapes.len(), 3);
    let batches = epoch(&ds, 3);
    assert_eq!(batches.len(), ds.len(), "len() is exact up front");
    let mut all = indices(&batches);
    all.sort_unstable();
    assert_eq!(all, (0..101).collect::<Vec<i64>>(), "every sample once");
    for batch in &batches {
        let [b, h, w, c] = batch.shape;
        assert!(shapes.contains(&[h, w]), "a bucket's shape");
        let Images::U8(images) = &batch.images else {
            panic!("uint8")
        };
        let masks = batch.masks.as_ref().expect("masks with buckets");
        for slot in 0..b {
            let i = batch.sample_indices[slot] as usize;
            let [sh, sw, _] = shape_of(i);
            let scale = (h as f64 / sh as f64).min(w as f64 / sw as f64).min(1.0);
            let (ch, cw) = (
                (sh as f64 * scale).round() as usize,
                (sw as f64 * scale).round() as usize,
            );
            assert_eq!(
                (ch, cw),
                (sh, sw),
                "derived buckets hold every sample unchanged"
            );
            for y in 0..h {
                for x in 0..w {
                    let inside = y < ch && x < cw;
                    assert_eq!(masks[(slot * h + y) * w + x], u8::from(inside));
                    let px = images[((slot * h + y) * w + x) * c];
                    assert_eq!(
                        px,
                        if inside { (i % 251) as u8 } else { 0 },
                        "sample {i} at ({y}, {x})"
                    );
                }
            }
            let k = batch.max_boxes;
            let got = &batch.boxes[slot * k * 4..slot * k * 4 + 4];
            let want = [0.0, 0.0, (sw / 2) as f32 * cw as f32 / sw as f32, ch as f32];
            assert!(
                got.iter().zip(want).all(|(a, b)| (a - b).abs() < 0.51),
                "{got:?} vs {want:?}"
            );
            assert_eq!(batch.box_labels[slot * k], 7);
        }
    }
    // The same batches whatever the worker count.
    let again = epoch(&ds, 1);
    assert_eq!(indices(&again), indices(&batches));
}

#[test]
fn drop_last_drops_each_buckets_short_batch() {
    let ds = dataset(
        100,
        DatasetOptions {
            drop_last: true,
            ..options(8)
        },
    );
    let batches = epoch(&ds, 2);
    assert!(batches.iter().all(|b| b.shape[0] == 8));
    assert_eq!(batches.len(), ds.len());
    assert_eq!(batches.len(), (34 / 8) + (33 / 8) + (33 / 8));
}

#[test]
fn ranks_share_the_batches_evenly_and_resume_on_another_count() {
    // 3 ranks: disjoint, equal, covering the epoch.
    let by_rank: Vec<Vec<Batch>> = (0..3)
        .map(|rank| {
            epoch(
                &dataset(
                    90,
                    DatasetOptions {
                        rank,
                        world_size: 3,
                        shard: Shard::Drop,
                        ..options(5)
                    },
                ),
                2,
            )
        })
        .collect();
    let total = dataset(90, options(5)).len();
    assert_eq!(total, 18);
    let mut seen = HashSet::new();
    for r in &by_rank {
        assert_eq!(r.len(), 6);
        for i in indices(r) {
            assert!(seen.insert(i), "sample {i} twice");
        }
    }
    assert_eq!(seen.len(), 90);

    // 2 ranks read 3 batches each; the job goes on with 3 ranks from the
    // consumed position: the rest of the epoch comes exactly once.
    let two: Vec<Arc<Dataset<Shapes>>> = (0..2)
        .map(|rank| {
            dataset(
                90,
                DatasetOptions {
                    rank,
                    world_size: 2,
                    ..options(5)
                },
            )
        })
        .collect();
    let mut done: Vec<i64> = Vec::new();
    for ds in &two {
        for k in 0..3 {
            done.extend(ds.batch(0, k).unwrap().sample_indices);
        }
    }
    let position = two[0].consumed(0, 3);
    assert_eq!(position, 6);
    let mut rest = Vec::new();
    for rank in 0..3 {
        let ds = dataset(
            90,
            DatasetOptions {
                rank,
                world_size: 3,
                ..options(5)
            },
        );
        assert_eq!(ds.order_fingerprint(), two[0].order_fingerprint());
        ds.resume_at(0, position).unwrap();
        assert_eq!(ds.len_of_epoch(0), 4);
        for k in 0..ds.len_of_epoch(0) {
            rest.extend(ds.batch(0, k).unwrap().sample_indices);
        }
    }
    let mut all: Vec<i64> = done.iter().chain(&rest).copied().collect();
    all.sort_unstable();
    assert_eq!(all, (0..90).collect::<Vec<i64>>());
}

#[test]
fn explicit_shapes_flips_and_bad_settings() {
    let ds = dataset(
        30,
        DatasetOptions {
            buckets: Some(Buckets::Shapes(vec![[32, 64], [64, 32]])),
            augment: Augment {
                hflip: 1.0,
                random_resized_crop: None,
            },
            ..options(4)
        },
    );
    for batch in epoch(&ds, 2) {
        let [b, h, w, _] = batch.shape;
        let masks = batch.masks.unwrap();
        for slot in 0..b {
            // Flipped before placing: the content (and its left-half box,
            // now its right half) stays at the top-left.
            let i = batch.sample_indices[slot] as usize;
            let [sh, sw, _] = shape_of(i);
            let scale = (h as f64 / sh as f64).min(w as f64 / sw as f64).min(1.0);
            let cw = (sw as f64 * scale).round() as f32;
            assert_eq!(masks[slot * h * w], 1);
            let k = batch.max_boxes;
            let x1 = batch.boxes[slot * k * 4 + 2];
            assert!(
                (x1 - cw).abs() < 0.51,
                "box ends at {x1}, the content at {cw} (bucket {w})"
            );
        }
    }
    let refuse = |opts: DatasetOptions| {
        Dataset::new(
            Shapes {
                n: 4,
                classes: vec![],
            },
            opts,
        )
        .unwrap_err()
        .to_string()
    };
    let e = refuse(DatasetOptions {
        buckets: None,
        ..options(2)
    });
    assert!(e.contains("buckets="), "{e}");
    let e = refuse(DatasetOptions {
        augment: Augment {
            hflip: 0.0,
            random_resized_crop: Some(((0.5, 1.0), (0.75, 1.33))),
        },
        ..options(2)
    });
    assert!(e.contains("random_resized_crop"), "{e}");
    let e = refuse(DatasetOptions {
        buckets: Some(Buckets::Auto(0)),
        ..options(2)
    });
    assert!(e.contains("buckets"), "{e}");
    let e = refuse(DatasetOptions {
        buckets: Some(Buckets::Shapes(vec![[0, 5]])),
        ..options(2)
    });
    assert!(e.contains("buckets"), "{e}");
}

#[test]
fn float32_and_channels_first_place_the_same_pixels() {
    let base = DatasetOptions {
        shuffle: false,
        mean: Some(vec![100.0, 110.0, 120.0]),
        std: Some(vec![50.0, 25.0, 10.0]),
        ..options(6)
    };
    let with = |dtype, layout| {
        dataset(
            40,
            DatasetOptions {
                dtype,
                layout,
                normalize: true,
                ..base.clone()
            },
        )
    };
    let u8_hwc = epoch(&with(Dtype::U8, Layout::Nhwc), 2);
    let f32_hwc = epoch(&with(Dtype::F32, Layout::Nhwc), 2);
    let u8_chw = epoch(&with(Dtype::U8, Layout::Nchw), 2);
    let f32_chw = epoch(&with(Dtype::F32, Layout::Nchw), 2);
    let (mean, std) = ([100.0f32, 110.0, 120.0], [50.0f32, 25.0, 10.0]);
    for k in 0..u8_hwc.len() {
        let [b, h, w, c] = u8_hwc[k].shape;
        assert_eq!(f32_chw[k].shape, [b, c, h, w]);
        let (Images::U8(a), Images::F32(f), Images::U8(a2), Images::F32(f2)) = (
            &u8_hwc[k].images,
            &f32_hwc[k].images,
            &u8_chw[k].images,
            &f32_chw[k].images,
        ) else {
            panic!("element types")
        };
        for s in 0..b {
            for y in 0..h {
                for x in 0..w {
                    for ch in 0..c {
                        let v = a[((s * h + y) * w + x) * c + ch];
                        let want = (f32::from(v) - mean[ch]) / std[ch];
                        let chw_at = ((s * c + ch) * h + y) * w + x;
                        assert_eq!(a2[chw_at], v);
                        assert!((f[((s * h + y) * w + x) * c + ch] - want).abs() < 1e-5);
                        assert!((f2[chw_at] - want).abs() < 1e-5);
                    }
                }
            }
        }
        assert_eq!(u8_hwc[k].masks, f32_chw[k].masks);
    }
}

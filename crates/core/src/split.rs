//! Deterministic, stratified train/validation split.

use crate::{Error, Manifest};

use crate::splitmix64;

impl Manifest {
    /// Splits into `(train, val)`, stratified by class: each class (and the
    /// unlabelled samples, as one more group) gives `round(n × val)` samples
    /// to validation. Which ones is a pure function of `seed` and the
    /// samples' positions in this manifest. Both parts keep this manifest's
    /// order, classes and source.
    pub fn split(&self, val: f64, seed: u64) -> Result<(Manifest, Manifest), Error> {
        if !(0.0..=1.0).contains(&val) {
            return Err(Error::InvalidArgument(format!(
                "val must be a fraction between 0 and 1, got {val}"
            )));
        }
        // Group sample indices by label; `None` goes last.
        let groups = self.classes.len() + 1;
        let mut by_group: Vec<Vec<usize>> = vec![Vec::new(); groups];
        for (i, s) in self.samples.iter().enumerate() {
            let g = s.label.map_or(groups - 1, |l| (l as usize).min(groups - 1));
            by_group[g].push(i);
        }
        let mut is_val = vec![false; self.samples.len()];
        let seed_mix = splitmix64(seed);
        for members in &mut by_group {
            let n_val = (members.len() as f64 * val).round() as usize;
            members.sort_by_key(|&i| splitmix64(seed_mix ^ i as u64));
            for &i in &members[..n_val] {
                is_val[i] = true;
            }
        }
        let part = |want_val: bool| Manifest {
            classes: self.classes.clone(),
            source: self.source.clone(),
            samples: self
                .samples
                .iter()
                .zip(&is_val)
                .filter(|(_, &v)| v == want_val)
                .map(|(s, _)| s.clone())
                .collect(),
            findings: Vec::new(),
        };
        Ok((part(false), part(true)))
    }
}

#[cfg(test)]
mod tests {
    use crate::{ImageFormat, Manifest, Sample};

    fn manifest(per_class: &[usize]) -> Manifest {
        let mut m = Manifest::new(
            per_class
                .iter()
                .enumerate()
                .map(|(i, _)| format!("c{i}"))
                .collect(),
        );
        for (c, &n) in per_class.iter().enumerate() {
            for i in 0..n {
                m.samples.push(Sample {
                    path: format!("/d/c{c}/{i}.jpg").into(),
                    label: Some(c as u32),
                    width: 1,
                    height: 1,
                    format: ImageFormat::Jpeg,
                    boxes: vec![],
                });
            }
        }
        m
    }

    #[test]
    fn split_is_stratified_disjoint_and_complete() {
        let m = manifest(&[100, 30, 7]);
        let (train, val) = m.split(0.2, 3).unwrap();
        assert_eq!(train.samples.len() + val.samples.len(), 137);
        let counts = val.class_counts();
        assert_eq!(counts, vec![20, 6, 1]);
        for s in &val.samples {
            assert!(!train.samples.contains(s));
        }
    }

    #[test]
    fn split_is_deterministic_and_seed_dependent() {
        let m = manifest(&[50, 50]);
        let a = m.split(0.3, 1).unwrap();
        let b = m.split(0.3, 1).unwrap();
        let c = m.split(0.3, 2).unwrap();
        assert_eq!(a, b);
        assert_ne!(a.1.samples, c.1.samples);
    }

    #[test]
    fn split_rejects_fraction_out_of_range() {
        assert!(manifest(&[3]).split(1.5, 0).is_err());
        assert!(manifest(&[3]).split(-0.1, 0).is_err());
    }
}

//! Packing into object storage, and committing parts packed there.

use std::path::PathBuf;

use stokehold_core::{Control, SampleSource};
use stokehold_pack::{pack_with, Error as PackError, PackOptions, PackReport};
use stokehold_store::index::{
    check_parts, parse_part_dir, parse_part_record, part_dir_name, PART_FILE,
};
use stokehold_store::{DatasetIndex, Error, RemoteKind, INDEX_FILE};

use crate::{Remote, RemoteOptions};

/// Packs `samples` into the dataset folder `url` (`s3://bucket/prefix/`):
/// the shards are written in a temporary folder on local disk (one at a
/// time is kept there) and each is uploaded as soon as it is closed,
/// multipart when large; the index (or, with `options.part`, the part's
/// record) is uploaded last, so a reader never sees a half-written
/// dataset. An existing dataset (or part) there is refused unless
/// `options.force`, which first removes its index, then its shards.
pub fn pack_to_remote(
    samples: &dyn SampleSource,
    url: &str,
    options: &PackOptions,
    control: &Control,
    remote_options: RemoteOptions,
) -> Result<PackReport, PackError> {
    let remote = Remote::connect(url, remote_options)?;
    pack_into(&remote, samples, options, control)
}

/// [`pack_to_remote`] through an existing client.
pub fn pack_into(
    remote: &Remote,
    samples: &dyn SampleSource,
    options: &PackOptions,
    control: &Control,
) -> Result<PackReport, PackError> {
    if !options.sharded() {
        return Err(PackError::InvalidArgument(format!(
            "{}: a dataset in object storage is written as shards: give a shard size or samples per shard",
            remote.location()
        )));
    }
    clear_output(remote, options.part, options.force, true)?;
    let local = tempfile::Builder::new()
        .prefix("stokehold-upload-")
        .tempdir()
        .map_err(|e| Error::Io {
            path: std::env::temp_dir(),
            error: e,
        })?;
    let mut report = pack_with(samples, local.path(), options, control, Some(remote))?;
    report.path = PathBuf::from(remote.location().to_string());
    report.file_bytes = remote
        .list()?
        .iter()
        .filter(|(n, _)| n.ends_with(".h5"))
        .filter(|(n, _)| match options.part {
            Some((i, parts)) => n.starts_with(&part_dir_name(i, parts)),
            None => !n.contains('/'),
        })
        .map(|(_, size)| size)
        .sum();
    Ok(report)
}

/// Whether the dataset folder (or, with `part`, that part's folder) behind
/// `remote` already holds a dataset: refused unless `force`; with `force`
/// and `clear`, what is there is removed, the index (or the part's record)
/// first, so that no reader takes the old shards for a dataset.
pub fn clear_output(
    remote: &Remote,
    part: Option<(usize, usize)>,
    force: bool,
    clear: bool,
) -> Result<(), PackError> {
    let existing = remote.list()?;
    let (taken, mut stale): (bool, Vec<&str>) = match part {
        Some((i, n)) => {
            let dir = format!("{}/", part_dir_name(i, n));
            let stale: Vec<&str> = existing
                .iter()
                .map(|(name, _)| name.as_str())
                .filter(|name| name.starts_with(&dir))
                .collect();
            (stale.iter().any(|n| n.ends_with(PART_FILE)), stale)
        }
        None => {
            let stale: Vec<&str> = existing
                .iter()
                .map(|(name, _)| name.as_str())
                .filter(|name| {
                    *name == INDEX_FILE
                        || (name.starts_with("shard-") && name.ends_with(".h5"))
                        || name.starts_with("part-")
                })
                .collect();
            (!stale.is_empty(), stale)
        }
    };
    if taken && !force {
        return Err(PackError::Exists {
            path: PathBuf::from(remote.location().to_string()),
        });
    }
    if !clear {
        return Ok(());
    }
    stale.sort_by_key(|n| !(*n == INDEX_FILE || n.ends_with(PART_FILE)));
    for name in stale {
        remote.delete(name)?;
    }
    Ok(())
}

/// [`stokehold_store::commit`] for a dataset folder in object storage:
/// checks the parts packed there (records, options, ranges, shard sizes)
/// and uploads `dataset.json`.
pub fn commit_remote(
    url: &str,
    remote_options: RemoteOptions,
    max_bytes: u64,
) -> Result<DatasetIndex, Error> {
    let remote = Remote::connect(url, remote_options)?;
    commit_into(&remote, max_bytes)
}

/// [`commit_remote`] through an existing client.
pub fn commit_into(remote: &Remote, max_bytes: u64) -> Result<DatasetIndex, Error> {
    let bad = |reason: String| Error::Remote {
        location: remote.location().to_string(),
        reason,
        kind: RemoteKind::Failed,
    };
    let objects = remote.list()?;
    let sizes: std::collections::HashMap<&str, u64> =
        objects.iter().map(|(n, s)| (n.as_str(), *s)).collect();
    let mut records = std::collections::BTreeMap::new();
    let mut started = Vec::new();
    let mut counts = Vec::new();
    let mut dirs: Vec<&str> = objects
        .iter()
        .filter_map(|(n, _)| n.split_once('/').map(|(d, _)| d))
        .filter(|d| parse_part_dir(d).is_some())
        .collect();
    dirs.dedup();
    for dir in dirs {
        let (i, n) = parse_part_dir(dir).expect("filtered");
        counts.push(n);
        let record = format!("{dir}/{PART_FILE}");
        match sizes.get(record.as_str()) {
            None => started.push(dir.to_owned()),
            Some(&size) if size > max_bytes => {
                return Err(bad(format!(
                    "{record} has {size} bytes, more than max_source_bytes ({max_bytes})"
                )))
            }
            Some(_) => {
                let bytes = remote.get(&record, None)?;
                records.insert(i, parse_part_record(dir, &bytes).map_err(&bad)?);
            }
        }
    }
    let index = check_parts(records, started, counts, |name| {
        sizes
            .get(name)
            .copied()
            .ok_or_else(|| "not in the bucket".to_owned())
    })
    .map_err(&bad)?;
    let mut json = serde_json::to_vec(&index).map_err(|e| bad(e.to_string()))?;
    json.push(b'\n');
    remote.put(INDEX_FILE, json)?;
    Ok(index)
}

//! `stokehold pack`, `inspect` and `preview`.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use stokehold_core::Control;
use stokehold_pack::{PackOptions, PreviewOptions, ShardOptions, StorageOption};
use stokehold_store::{PackedDataset, Storage};

use super::{run_index, PackArgs};
use crate::progress::with_progress;

pub(super) fn pack(args: PackArgs, control: &Control, hooks: &crate::Hooks<'_>) -> Result<()> {
    if args.engine == "ray" {
        return ray_pack(&args, hooks);
    }
    if args.parts.is_some() || args.ray_address.is_some() {
        anyhow::bail!(
            "--parts and --ray-address go with --engine ray; on one machine use --part I/N"
        );
    }
    let shards =
        (args.shard_size.is_some() || args.samples_per_shard.is_some()).then_some(ShardOptions {
            samples: args.samples_per_shard,
            bytes: args.shard_size,
        });
    let options = PackOptions {
        size: args.size,
        channels: args.channels,
        resize: args.resize,
        max_size: args.max_size,
        multiple: args.multiple,
        filter: args.filter,
        fill: args.fill,
        storage: args.storage.with_quality(args.quality),
        threads: args.threads,
        strict: args.strict,
        force: args.force,
        limits: args.source_args.limits(),
        shards,
        part: args.part,
        ..PackOptions::default()
    };
    // Refused before anything is indexed, in a bucket as on local disk.
    let bucket = match stokehold_remote::remote_url(&args.output) {
        Some(url) => {
            let bucket = stokehold_remote::Remote::connect(url, remote_options())?;
            stokehold_remote::clear_output(&bucket, options.part, options.force, false)?;
            Some(bucket)
        }
        None if options.sharded() => {
            stokehold_pack::check_output_dir(&args.output, &options)?;
            None
        }
        None => {
            stokehold_pack::check_output(&args.output, args.force)?;
            None
        }
    };
    let index_options = args.source_args.index_options(args.strict, args.threads);
    // A manifest is packed as it is: indexing it again would probe every
    // image once more.
    let is_manifest = match index_options.format {
        Some(f) => f == stokehold_core::SourceFormat::Manifest,
        None => {
            stokehold_index::detect_format(&args.source).ok()
                == Some(stokehold_core::SourceFormat::Manifest)
        }
    };
    // A manifest file is read line by line as it is packed (memory for the
    // samples in flight, not the whole manifest), and recorded as the
    // source (what is packed is this file: the self-overwrite check needs it).
    let (indexed, file);
    let (samples, index_findings): (
        &dyn stokehold_core::SampleSource,
        &[stokehold_core::Finding],
    ) = if is_manifest && !args.strict {
        file = stokehold_core::ManifestFile::open(&args.source, &index_options.limits, true)?;
        (&file, &[])
    } else {
        indexed = run_index(
            &args.source,
            &index_options,
            args.quiet,
            args.report.as_deref(),
            control,
        )?;
        (&indexed, &indexed.findings)
    };
    let result = with_progress("packing", args.quiet, control, || match &bucket {
        Some(bucket) => stokehold_remote::pack_into(bucket, samples, &options, control),
        None => stokehold_pack::pack(samples, &args.output, &options, control),
    });
    let mut findings = index_findings.to_vec();
    let report = match result {
        Ok(report) => report,
        Err(e) => {
            if let (Some(path), stokehold_pack::Error::Empty { findings: more }) =
                (&args.report, &e)
            {
                findings.extend(more.iter().cloned());
                write_pack_report(path, &args.source, None, &findings)?;
            }
            return Err(e.into());
        }
    };
    findings.extend(report.findings.iter().cloned());
    if let Some(path) = &args.report {
        write_pack_report(path, &args.source, Some(&report), &findings)?;
    }
    let skipped = index_findings.iter().filter(|f| f.skipped).count() + report.num_skipped;
    let (h, w) = args.size;
    let shape = if args.resize == stokehold_image::ResizePolicy::Fit {
        format!("fit within {}, {} channel(s)", args.max_size, args.channels)
    } else {
        format!("{h}x{w}x{}", args.channels)
    };
    let what = match options.part {
        Some((i, n)) => format!(
            " (part {i} of {n}; `stokehold commit {}` when every part is done)",
            args.output.display()
        ),
        None if options.sharded() => format!(" in {} shard(s)", report.shards),
        None => String::new(),
    };
    writeln!(
        std::io::stdout(),
        "{}: {} samples{what}, {shape} {}, {}; skipped {skipped}; {:.0} images/s on {} thread(s); mean {} std {}",
        args.output.display(),
        report.num_samples,
        match options.storage {
            StorageOption::Raw => "raw".to_string(),
            StorageOption::Jpeg(q) => format!("jpeg q{q}"),
            StorageOption::Png => "png".to_string(),
        },
        human_bytes(report.file_bytes),
        report.num_samples as f64 / report.seconds.max(1e-9),
        report.threads,
        fmt_floats(&report.mean),
        fmt_floats(&report.std),
    )?;
    Ok(())
}

/// `pack --engine ray`: hands the options to the host (the Python package).
fn ray_pack(args: &PackArgs, hooks: &crate::Hooks<'_>) -> Result<()> {
    let Some(hook) = hooks.ray_pack else {
        anyhow::bail!(
            "--engine ray runs from the Python package's `stokehold` command (pip install 'stokehold[ray]')"
        );
    };
    if args.part.is_some() {
        anyhow::bail!("--part is for one part run by hand; --engine ray runs every part");
    }
    let (h, w) = args.size;
    let s = &args.source_args;
    let options = serde_json::json!({
        "source": args.source,
        "out": args.output,
        "size": [h, w],
        "resize": args.resize.as_str(),
        "filter": args.filter.as_str(),
        "channels": args.channels,
        "storage": args.storage.to_string(),
        "quality": args.quality,
        "fill": args.fill,
        "num_threads": args.threads,
        "strict": args.strict,
        "force": args.force,
        "shard_size": args.shard_size,
        "samples_per_shard": args.samples_per_shard,
        "parts": args.parts,
        "address": args.ray_address,
        "format": s.format.0.map_or("auto", |f| f.as_str()),
        "max_pixels": s.max_pixels,
        "max_file_bytes": s.max_file_bytes,
        "progress": !args.quiet,
    });
    let summary = hook(options)?;
    writeln!(std::io::stdout(), "{summary}")?;
    Ok(())
}

/// Object storage is reached with the settings of the `AWS_*` variables
/// and the AWS files.
fn remote_options() -> stokehold_remote::RemoteOptions {
    stokehold_remote::RemoteOptions::default()
}

fn open_packed(file: &Path) -> Result<PackedDataset> {
    Ok(stokehold_remote::open_dataset(
        file,
        remote_options(),
        stokehold_core::Limits::DEFAULT_MAX_SOURCE_BYTES,
        None,
    )?)
}

pub(super) fn commit(dir: &Path) -> Result<()> {
    let max = stokehold_core::Limits::DEFAULT_MAX_SOURCE_BYTES;
    let index = match stokehold_remote::remote_url(dir) {
        Some(url) => stokehold_remote::commit_remote(url, remote_options(), max)?,
        None => stokehold_pack::commit(dir, max)?,
    };
    writeln!(
        std::io::stdout(),
        "{}: committed {} samples in {} shard(s); mean {} std {}",
        dir.join(stokehold_store::INDEX_FILE).display(),
        index.num_samples,
        index.shards.len(),
        fmt_floats(&index.mean),
        fmt_floats(&index.std)
    )?;
    Ok(())
}

fn write_pack_report(
    path: &Path,
    source: &Path,
    report: Option<&stokehold_pack::PackReport>,
    findings: &[stokehold_core::Finding],
) -> Result<()> {
    let json = serde_json::json!({
        "source": source,
        "ok": report.is_some(),
        "output": report.map(|r| &r.path),
        "samples": report.map(|r| r.num_samples),
        "seconds": report.map(|r| r.seconds),
        "mean": report.map(|r| &r.mean),
        "std": report.map(|r| &r.std),
        "class_counts": report.map(|r| &r.class_counts),
        "findings": findings,
    });
    std::fs::write(path, serde_json::to_string_pretty(&json)? + "\n")
        .with_context(|| format!("cannot write the report {}", path.display()))
}

fn fmt_floats(v: &[f64]) -> String {
    let parts: Vec<String> = v.iter().map(|x| format!("{x:.2}")).collect();
    format!("[{}]", parts.join(", "))
}

fn human_bytes(n: u64) -> String {
    let n = n as f64;
    if n >= 1e9 {
        format!("{:.2} GB", n / 1e9)
    } else if n >= 1e6 {
        format!("{:.1} MB", n / 1e6)
    } else {
        format!("{:.1} kB", n / 1e3)
    }
}

pub(super) fn inspect(file: &Path, json: bool) -> Result<()> {
    let reader = open_packed(file)?;
    let info = reader.info();
    let bytes = reader.disk_bytes();
    let [h, w, c] = info.image_shape;
    let mut out = std::io::stdout().lock();
    let classes = &info.attrs.classes;
    if json {
        let value = serde_json::json!({
            "path": file,
            "format_version": info.format_version,
            "num_samples": info.num_samples,
            "num_shards": reader.num_shards(),
            "image_shape": info.image_shape,
            "storage": info.storage.kind(),
            "codec": match &info.storage { Storage::Encoded { codec } => Some(codec), Storage::Raw => None },
            "quality": info.attrs.quality,
            "resize": info.attrs.resize,
            "filter": info.attrs.filter,
            "fill": info.attrs.fill,
            "mean": info.attrs.mean,
            "std": info.attrs.std,
            "classes": classes,
            "class_counts": info.class_counts,
            "num_boxes": reader.num_boxes(),
            "source": info.attrs.source,
            "created_by": info.created_by,
            "file_bytes": bytes,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
        return Ok(());
    }
    let storage = match &info.storage {
        Storage::Raw => "raw uint8".to_string(),
        Storage::Encoded { codec } => match info.attrs.quality {
            Some(q) => format!("encoded {codec} (quality {q})"),
            None => format!("encoded {codec}"),
        },
    };
    writeln!(out, "{}", file.display())?;
    writeln!(
        out,
        "  format        stokehold {} ({})",
        info.format_version, info.created_by
    )?;
    writeln!(out, "  samples       {}", info.num_samples)?;
    if reader.num_shards() > 1 || reader.shard_dir().is_some() {
        writeln!(out, "  shards        {}", reader.num_shards())?;
    }
    if h == 0 || w == 0 {
        // `fit`: each sample its own shape; the largest and smallest.
        let shapes: Vec<[usize; 3]> = (0..reader.len()).map(|i| reader.sample_shape(i)).collect();
        let area = |s: &&[usize; 3]| s[0] * s[1];
        let (lo, hi) = (
            shapes.iter().min_by_key(area),
            shapes.iter().max_by_key(area),
        );
        match (lo, hi) {
            (Some(lo), Some(hi)) => writeln!(
                out,
                "  image shape   varying, {}x{}x{c} to {}x{}x{c} (H x W x C; read with buckets=)",
                lo[0], lo[1], hi[0], hi[1]
            )?,
            _ => writeln!(out, "  image shape   varying")?,
        }
    } else {
        writeln!(out, "  image shape   {h}x{w}x{c} (H x W x C)")?;
    }
    writeln!(
        out,
        "  storage       {storage}, {} on disk",
        human_bytes(bytes)
    )?;
    writeln!(
        out,
        "  resize        {} ({}), fill {}",
        info.attrs.resize, info.attrs.filter, info.attrs.fill
    )?;
    writeln!(
        out,
        "  mean / std    {} / {} (0-255)",
        fmt_floats(&info.attrs.mean),
        fmt_floats(&info.attrs.std)
    )?;
    let per = reader.num_boxes() as f64 / info.num_samples.max(1) as f64;
    writeln!(
        out,
        "  boxes         {} ({per:.2} per sample)",
        reader.num_boxes()
    )?;
    writeln!(out, "  source        {}", info.attrs.source)?;
    writeln!(out, "  classes       {}", classes.len())?;
    let width = classes.iter().map(|c| c.len()).max().unwrap_or(0);
    for (i, name) in classes.iter().enumerate() {
        let count = info.class_counts.get(i).copied().unwrap_or(0);
        writeln!(out, "    {i:>4}  {name:<width$}  {count}")?;
    }
    Ok(())
}

pub(super) fn preview(file: &Path, output: &Path, n: usize, seed: u64) -> Result<()> {
    let reader = open_packed(file)?;
    let chosen = stokehold_pack::preview_dataset(&reader, output, &PreviewOptions { n, seed })?;
    writeln!(
        std::io::stdout(),
        "{}: {} samples drawn from {}",
        output.display(),
        chosen.len(),
        file.display()
    )?;
    Ok(())
}

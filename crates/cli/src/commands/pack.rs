//! `stokehold pack`, `inspect` and `preview`.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use stokehold_core::Control;
use stokehold_pack::{PackOptions, PreviewOptions, StorageOption};
use stokehold_store::{Storage, StoreReader};

use super::{run_index, PackArgs};
use crate::progress::with_progress;

pub(super) fn pack(args: PackArgs, control: &Control) -> Result<()> {
    stokehold_pack::check_output(&args.output, args.force)?;
    let options = PackOptions {
        size: args.size,
        channels: args.channels,
        resize: args.resize,
        filter: args.filter,
        fill: args.fill,
        storage: args.storage.with_quality(args.quality),
        threads: args.threads,
        strict: args.strict,
        force: args.force,
        limits: args.source_args.limits(),
        ..PackOptions::default()
    };
    let index_options = args.source_args.index_options(args.strict, args.threads);
    let manifest = run_index(
        &args.source,
        &index_options,
        args.quiet,
        args.report.as_deref(),
        control,
    )?;
    let result = with_progress("packing", args.quiet, control, || {
        stokehold_pack::pack(&manifest, &args.output, &options, control)
    });
    let mut findings = manifest.findings.clone();
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
    let skipped = manifest.findings.iter().filter(|f| f.skipped).count() + report.num_skipped;
    let (h, w) = args.size;
    writeln!(
        std::io::stdout(),
        "{}: {} samples, {h}x{w}x{} {}, {}; skipped {skipped}; {:.0} images/s on {} thread(s); mean {} std {}",
        args.output.display(),
        report.num_samples,
        args.channels,
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
    let reader = StoreReader::open(file)?;
    let info = reader.info();
    let bytes = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    let [h, w, c] = info.image_shape;
    let mut out = std::io::stdout().lock();
    let classes = &info.attrs.classes;
    if json {
        let value = serde_json::json!({
            "path": file,
            "format_version": info.format_version,
            "num_samples": info.num_samples,
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
    writeln!(out, "  image shape   {h}x{w}x{c} (H x W x C)")?;
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
    let chosen = stokehold_pack::preview(file, output, &PreviewOptions { n, seed })?;
    writeln!(
        std::io::stdout(),
        "{}: {} samples drawn from {}",
        output.display(),
        chosen.len(),
        file.display()
    )?;
    Ok(())
}

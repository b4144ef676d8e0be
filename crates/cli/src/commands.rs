//! The subcommands.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use stokehold_core::{Control, Manifest, SourceFormat};
use stokehold_index::{IndexOptions, DEFAULT_MAX_PIXELS};

use crate::progress::with_progress;

/// stokehold: index, pack and feed image datasets that do not fit in memory.
#[derive(Debug, Parser)]
#[command(
    name = "stokehold",
    version,
    about = "stokehold: index, pack and feed image datasets that do not fit in memory."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build a manifest (JSON lines) from a folder tree, CSV, COCO JSON, Pascal VOC folder or manifest.
    Index(IndexArgs),
    /// Split a manifest into train and validation manifests, stratified by class.
    Split(SplitArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum FormatArg {
    Auto,
    Folder,
    Csv,
    Coco,
    Voc,
    Manifest,
}

#[derive(Debug, clap::Args)]
struct IndexArgs {
    /// The dataset: a class-per-folder tree, a CSV, a COCO JSON, a VOC folder or a manifest.
    source: PathBuf,
    /// Where to write the manifest (JSON lines).
    #[arg(short, long)]
    output: PathBuf,
    /// The source's format.
    #[arg(long, value_enum, default_value_t = FormatArg::Auto)]
    format: FormatArg,
    /// Fail on any finding instead of skipping the sample and reporting it.
    #[arg(long)]
    strict: bool,
    /// Class names in the order to use, comma-separated; other labels are findings.
    #[arg(long, value_delimiter = ',')]
    classes: Option<Vec<String>>,
    /// Refuse images with more pixels than this (decompression-bomb guard).
    #[arg(long, default_value_t = DEFAULT_MAX_PIXELS)]
    max_pixels: u64,
    /// Folder that relative image paths are resolved against.
    #[arg(long)]
    image_root: Option<PathBuf>,
    /// Write every finding to this file as JSON.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Threads probing image headers [default: STOKEHOLD_NUM_THREADS or the core count].
    #[arg(long)]
    workers: Option<usize>,
    /// No progress bar.
    #[arg(short, long)]
    quiet: bool,
}

#[derive(Debug, clap::Args)]
struct SplitArgs {
    /// The manifest to split.
    manifest: PathBuf,
    /// Fraction of each class that goes to validation.
    #[arg(long, default_value_t = 0.1)]
    val: f64,
    /// Seed of the split.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Train manifest [default: <manifest>.train.jsonl].
    #[arg(long)]
    train_out: Option<PathBuf>,
    /// Validation manifest [default: <manifest>.val.jsonl].
    #[arg(long)]
    val_out: Option<PathBuf>,
}

pub(crate) fn execute(cli: Cli, control: &Control) -> Result<()> {
    match cli.command {
        Command::Index(args) => index(args, control),
        Command::Split(args) => split(args),
    }
}

fn index(args: IndexArgs, control: &Control) -> Result<()> {
    let options = IndexOptions {
        format: match args.format {
            FormatArg::Auto => None,
            FormatArg::Folder => Some(SourceFormat::Folder),
            FormatArg::Csv => Some(SourceFormat::Csv),
            FormatArg::Coco => Some(SourceFormat::Coco),
            FormatArg::Voc => Some(SourceFormat::Voc),
            FormatArg::Manifest => Some(SourceFormat::Manifest),
        },
        strict: args.strict,
        max_pixels: args.max_pixels,
        classes: args.classes,
        image_root: args.image_root,
        threads: args.workers,
    };
    let result = with_progress("probing", args.quiet, control, || {
        stokehold_index::index(&args.source, &options, control)
    });
    let manifest = match result {
        Ok(m) => m,
        Err(stokehold_index::Error::Strict { findings }) => {
            if let Some(report) = &args.report {
                write_report(report, &args.source, None, &findings)?;
            }
            let mut err = std::io::stderr().lock();
            for f in &findings {
                writeln!(err, "{f}")?;
            }
            anyhow::bail!(
                "strict mode: {} problem(s) found in {}; nothing written",
                findings.len(),
                args.source.display()
            );
        }
        Err(e) => return Err(e.into()),
    };
    manifest.save(&args.output)?;
    if let Some(report) = &args.report {
        write_report(report, &args.source, Some(&manifest), &manifest.findings)?;
    }
    writeln!(
        std::io::stdout(),
        "{}: {}",
        args.output.display(),
        manifest.summary()
    )?;
    Ok(())
}

fn write_report(
    path: &Path,
    source: &Path,
    manifest: Option<&Manifest>,
    findings: &[stokehold_core::Finding],
) -> Result<()> {
    let report = serde_json::json!({
        "source": source,
        "ok": manifest.is_some(),
        "samples": manifest.map(|m| m.samples.len()),
        "classes": manifest.map(|m| &m.classes),
        "boxes": manifest.map(|m| m.num_boxes()),
        "findings": findings,
    });
    let text = serde_json::to_string_pretty(&report)?;
    std::fs::write(path, text + "\n")
        .with_context(|| format!("cannot write the report {}", path.display()))
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!("{stem}.{suffix}.jsonl"))
}

fn split(args: SplitArgs) -> Result<()> {
    let manifest = Manifest::load(&args.manifest)?;
    let (train, val) = manifest.split(args.val, args.seed)?;
    let train_out = args
        .train_out
        .unwrap_or_else(|| sibling(&args.manifest, "train"));
    let val_out = args
        .val_out
        .unwrap_or_else(|| sibling(&args.manifest, "val"));
    train.save(&train_out)?;
    val.save(&val_out)?;
    writeln!(
        std::io::stdout(),
        "{}: {} samples; {}: {} samples",
        train_out.display(),
        train.samples.len(),
        val_out.display(),
        val.samples.len()
    )?;
    Ok(())
}

//! The subcommands.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Parser, Subcommand};
use stokehold_core::vocab::{parse_choice, VariantNames};
use stokehold_core::{Control, Limits, Manifest, SourceFormat};
use stokehold_image::{Filter, ResizePolicy};
use stokehold_index::IndexOptions;
use stokehold_pack::StorageKind;

use crate::progress::with_progress;

mod pack;

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
    /// Decode, resize and write a dataset into one HDF5 file, or a directory of shards.
    Pack(PackArgs),
    /// Check that every part of a dataset directory is packed, and write its index.
    Commit(CommitArgs),
    /// Describe a packed file or dataset directory: samples, shape, storage, classes, statistics.
    Inspect(InspectArgs),
    /// Draw a grid of packed samples with class names and boxes into a PNG.
    Preview(PreviewArgs),
}

/// A value parser for an option word: the choices are the enum's own
/// words ([`stokehold_core::vocab`]), listed by `--help` and in errors.
pub(crate) fn choice<T>() -> impl TypedValueParser<Value = T>
where
    T: std::str::FromStr + VariantNames + Clone + Send + Sync + 'static,
{
    PossibleValuesParser::new(T::VARIANTS).try_map(|s| parse_choice::<T>("value", &s))
}

/// `auto` (detect from the path: `None`) or a source format.
#[derive(Debug, Clone, Copy)]
struct FormatChoice(Option<SourceFormat>);

fn format_choice(s: &str) -> Result<FormatChoice, String> {
    if s == "auto" {
        return Ok(FormatChoice(None));
    }
    parse_choice::<SourceFormat>("--format", s)
        .map(|f| FormatChoice(Some(f)))
        .map_err(|e| e.replace("one of ", "auto or one of "))
}

/// A thread count within the documented cap.
fn threads_arg(s: &str) -> Result<usize, String> {
    let n: usize = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of threads"))?;
    stokehold_core::resolve_threads(Some(n), "--threads")
}

#[derive(Debug, clap::Args)]
struct IndexArgs {
    /// The dataset: a class-per-folder tree, a CSV, a COCO JSON, a VOC folder or a manifest.
    source: PathBuf,
    /// Where to write the manifest (JSON lines).
    #[arg(short, long)]
    output: PathBuf,
    /// Fail on any finding instead of skipping the sample and reporting it.
    #[arg(long)]
    strict: bool,
    /// Write every finding to this file as JSON.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Threads probing image headers, at most 8 per core [default: STOKEHOLD_NUM_THREADS or the core count].
    #[arg(long, value_parser = threads_arg)]
    threads: Option<usize>,
    /// No progress bar.
    #[arg(short, long)]
    quiet: bool,
    #[command(flatten)]
    source_args: SourceArgs,
}

/// Where a dataset comes from: the options `index` and `pack` share.
#[derive(Debug, clap::Args)]
struct SourceArgs {
    /// The source's format: auto, folder, csv, coco, voc or manifest.
    #[arg(long, default_value = "auto", value_parser = format_choice)]
    format: FormatChoice,
    /// Class names in the order to use, comma-separated; other labels are findings.
    #[arg(long, value_delimiter = ',')]
    classes: Option<Vec<String>>,
    /// Refuse images with more pixels than this (decompression-bomb guard).
    #[arg(long, default_value_t = Limits::DEFAULT_MAX_PIXELS)]
    max_pixels: u64,
    /// Refuse image files larger than this many bytes.
    #[arg(long, default_value_t = Limits::DEFAULT_MAX_FILE_BYTES)]
    max_file_bytes: u64,
    /// Refuse annotation files (CSV, COCO JSON, VOC XML) larger than this many bytes.
    #[arg(long, default_value_t = Limits::DEFAULT_MAX_SOURCE_BYTES)]
    max_source_bytes: u64,
    /// Refuse CSV rows and manifest lines longer than this many bytes.
    #[arg(long, default_value_t = Limits::DEFAULT_MAX_LINE_BYTES)]
    max_line_bytes: u64,
    /// Folder that relative image paths are resolved against.
    #[arg(long)]
    image_root: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct PackArgs {
    /// The dataset: a manifest, or anything `stokehold index` accepts.
    source: PathBuf,
    /// The HDF5 file to write, or the directory of shards (with --shard-size,
    /// --samples-per-shard or --part).
    #[arg(short, long)]
    output: PathBuf,
    /// Write a directory of shards of at most this much sample data each (e.g. 2GB, 512MiB).
    #[arg(long, value_parser = parse_bytes)]
    shard_size: Option<u64>,
    /// Write a directory of shards of this many samples each.
    #[arg(long)]
    samples_per_shard: Option<usize>,
    /// Pack only part I of N (I from 0) into the directory; `stokehold commit` joins the parts.
    #[arg(long, value_parser = parse_part)]
    part: Option<(usize, usize)>,
    /// Where the parts run: here, or as tasks of a Ray cluster (`pip install stokehold[ray]`).
    #[arg(long, default_value = "local", value_parser = ["local", "ray"])]
    engine: String,
    /// The Ray cluster to join (default: a running one, else a local one).
    #[arg(long)]
    ray_address: Option<String>,
    /// Parts (Ray tasks) to split the pack into [default: the cluster's CPUs].
    #[arg(long)]
    parts: Option<usize>,
    /// Output size, HEIGHTxWIDTH (or one number for a square).
    #[arg(long, default_value = "224x224", value_parser = parse_size)]
    size: (u32, u32),
    /// How images are fitted to the size (`fit`: keep each image's aspect and own shape, see --max-size).
    #[arg(long, default_value = "stretch", value_parser = choice::<ResizePolicy>())]
    resize: ResizePolicy,
    /// With --resize fit: the longer side at most this many pixels (images are never enlarged).
    #[arg(long, default_value_t = 512)]
    max_size: u32,
    /// With --resize fit: round both sides to a multiple of this (e.g. 32 for a network's strides).
    #[arg(long, default_value_t = 1)]
    multiple: u32,
    /// Resampling filter (antialiased when downscaling).
    #[arg(long, default_value = "bilinear", value_parser = choice::<Filter>())]
    filter: Filter,
    /// Output channels: 3 (RGB) or 1 (gray).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=3))]
    channels: u8,
    /// How pixels are stored: raw uint8 arrays, or one JPEG / PNG per sample.
    #[arg(long, default_value = "raw", value_parser = choice::<StorageKind>())]
    storage: StorageKind,
    /// JPEG quality of --storage jpeg.
    #[arg(long, default_value_t = 90, value_parser = clap::value_parser!(u8).range(1..=100))]
    quality: u8,
    /// Letterbox padding value (0-255).
    #[arg(long, default_value_t = 0)]
    fill: u8,
    /// Decode/resize threads, at most 8 per core [default: STOKEHOLD_NUM_THREADS or the core count].
    #[arg(long, value_parser = threads_arg)]
    threads: Option<usize>,
    /// Fail on the first problem instead of skipping the sample and reporting it.
    #[arg(long)]
    strict: bool,
    /// Replace the output if it exists.
    #[arg(long)]
    force: bool,
    /// Write every finding to this file as JSON.
    #[arg(long)]
    report: Option<PathBuf>,
    /// No progress bar.
    #[arg(short, long)]
    quiet: bool,
    #[command(flatten)]
    source_args: SourceArgs,
}

/// `2GB`, `512MiB`, `100kB` or a number of bytes.
pub(crate) fn parse_bytes(s: &str) -> Result<u64, String> {
    stokehold_core::vocab::parse_bytes(s)
}

/// `I/N`: part `I` (from 0) of `N`.
fn parse_part(s: &str) -> Result<(usize, usize), String> {
    let bad = || format!("{s:?} is not a part I/N such as 0/4 (I from 0 to N-1)");
    let (i, n) = s.split_once('/').ok_or_else(bad)?;
    let (i, n): (usize, usize) = (
        i.trim().parse().map_err(|_| bad())?,
        n.trim().parse().map_err(|_| bad())?,
    );
    if n == 0 || i >= n {
        return Err(bad());
    }
    Ok((i, n))
}

fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let parse = |t: &str| {
        t.trim()
            .parse::<u32>()
            .map_err(|_| format!("{s:?} is not HEIGHTxWIDTH, e.g. 224x224"))
    };
    match s.split_once(['x', 'X']) {
        Some((h, w)) => Ok((parse(h)?, parse(w)?)),
        None => parse(s).map(|n| (n, n)),
    }
}

#[derive(Debug, clap::Args)]
struct CommitArgs {
    /// The dataset directory the parts were packed into.
    dir: PathBuf,
}

#[derive(Debug, clap::Args)]
struct InspectArgs {
    /// The packed file, or dataset directory.
    file: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct PreviewArgs {
    /// The packed file.
    file: PathBuf,
    /// The PNG to write.
    #[arg(short, long, default_value = "preview.png")]
    output: PathBuf,
    /// Number of samples to draw.
    #[arg(long, default_value_t = 64)]
    n: usize,
    /// Seed of the choice of samples.
    #[arg(long, default_value_t = 0)]
    seed: u64,
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

pub(crate) fn execute(cli: Cli, control: &Control, hooks: &crate::Hooks<'_>) -> Result<()> {
    match cli.command {
        Command::Index(args) => index(args, control),
        Command::Split(args) => split(args),
        Command::Pack(args) => pack::pack(args, control, hooks),
        Command::Commit(args) => pack::commit(&args.dir),
        Command::Inspect(args) => pack::inspect(&args.file, args.json),
        Command::Preview(args) => pack::preview(&args.file, &args.output, args.n, args.seed),
    }
}

impl SourceArgs {
    fn limits(&self) -> Limits {
        Limits {
            max_pixels: self.max_pixels,
            max_file_bytes: self.max_file_bytes,
            max_source_bytes: self.max_source_bytes,
            max_line_bytes: self.max_line_bytes,
        }
    }

    fn index_options(&self, strict: bool, threads: Option<usize>) -> IndexOptions {
        IndexOptions {
            format: self.format.0,
            strict,
            limits: self.limits(),
            classes: self.classes.clone(),
            image_root: self.image_root.clone(),
            threads,
        }
    }
}

/// Indexes `source` with a progress bar; in strict mode, prints every
/// finding (and writes the report) before failing.
fn run_index(
    source: &Path,
    options: &IndexOptions,
    quiet: bool,
    report: Option<&Path>,
    control: &Control,
) -> Result<Manifest> {
    let result = with_progress("probing", quiet, control, || {
        stokehold_index::index(source, options, control)
    });
    match result {
        Ok(m) => Ok(m),
        Err(stokehold_index::Error::Strict { findings }) => {
            if let Some(report) = report {
                write_report(report, source, None, &findings)?;
            }
            let mut err = std::io::stderr().lock();
            for f in &findings {
                writeln!(err, "{f}")?;
            }
            anyhow::bail!(
                "strict mode: {} problem(s) found in {}; nothing written",
                findings.len(),
                source.display()
            );
        }
        Err(e) => Err(e.into()),
    }
}

fn index(args: IndexArgs, control: &Control) -> Result<()> {
    let options = args.source_args.index_options(args.strict, args.threads);
    let manifest = run_index(
        &args.source,
        &options,
        args.quiet,
        args.report.as_deref(),
        control,
    )?;
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

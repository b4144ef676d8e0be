"""The tables and the chart of benchmarks/bench_all.py, from its results."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional

from bench_all_methods import BASELINE, METHODS


def one_line(r: Dict[str, Any], problem: Optional[str]) -> str:
    """A run as the progress log prints it."""
    if r["status"] != "ok":
        return f"{r['status']}: {r.get('reason', '')}"
    check = f"NOT COUNTED: {problem}" if problem else f"same batches (MAD {r['check']['mad_first_batch']:.2f})"
    return (f"{r['images_per_s']:8.0f} images/s, peak RSS {r['peak_rss_mb']:5.0f} MB,"
            f" {r['cpu_ms_per_image']:6.2f} CPU ms/image ({r['passes']} pass(es), {r['seconds']:.1f} s); {check}")


def _rounds(values: List[float]) -> str:
    return ", ".join(f"{v:.0f}" for v in values)


def _check(s: Dict[str, Any]) -> str:
    if s["status"] != "ok":
        return f"{s['status']}: {s['reason']}"
    if not s["counted"]:
        return f"**no, not counted**: {s['reason']}"
    return f"yes (MAD {s['mad_first_batch']:.2f}, worst image {s['mad_max_image']:.2f})"


def _corpus_header(name: str, c: Dict[str, Any]) -> List[str]:
    raw, jpeg = c["packed"]["raw"], c["packed"]["jpeg"]
    return [
        f"## {name}: {c['images']} JPEGs, mean {c['mean_width']:.0f}×{c['mean_height']:.0f},"
        f" {c['mean_file_kb']:.0f} kB each ({c['total_mb']:.0f} MB); batches of {c['batch_size']}",
        "",
        f"Packed in this run (a one-off cost, not in the figures): raw {raw['bytes'] / 1e6:.1f} MB in"
        f" {raw['seconds']:.1f} s, JPEG q90 {jpeg['bytes'] / 1e6:.1f} MB in {jpeg['seconds']:.1f} s."
        + "".join(f" **stokehold.pack ({k}) skipped {v['num_skipped']} of {c['images']} images.**"
                  for k, v in c["packed"].items() if v.get("num_skipped")),
        "",
    ]


def markdown(info: Dict[str, Any]) -> str:
    m, st = info["machine"], info["settings"]
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items())
    lines = ["# All methods, one run", ""]
    if info["quick"]:
        lines += ["**QUICK SMOKE TEST** (`--quick`): small corpora, one round, short timings. These figures"
                  " check that the script works; they are not results.", ""]
    lines += [
        f"{info['date']}; {m['cpu']}, {m['cores_usable']} usable cores (of {m['cores']}),"
        f" {m['memory_gb']:.0f} GB, Linux {m['kernel']}, Python {m['python']}; {versions};"
        f" KERAS_BACKEND={st['keras_backend']}. Load average at start"
        f" {', '.join(f'{x:.2f}' for x in m['load_average_start'])}, at end"
        f" {', '.join(f'{x:.2f}' for x in m['load_average_end'])}.",
        "",
        "Batches (size per corpus below), 224×224×3 NHWC, float32 normalized with ImageNet's mean/std"
        f" (uint8 where named), in manifest order; {st['threads']} threads or workers. Each method in its own"
        f" process: one untimed pass, then full passes for at least {st['min_seconds']} s. Median of"
        f" {st['rounds']} round(s), methods alternating; \"rounds\" lists each round's images/s. Peak RSS:"
        " the process tree's (worker processes summed). CPU ms/image: user + system time of the tree over the"
        f" timed passes. Ratio: to `{BASELINE}` in the same round, then the median. Same batches: shape, dtype,"
        " labels, every image in every pass, each image of the first batch nearest to its own reference image,"
        f" and the first batch's mean absolute difference (MAD, 0-255) under {st['tolerance']} against Pillow's"
        " full decode with an antialiased bilinear resize.",
        "",
    ]
    for name, results in info["results"].items():
        lines += _corpus_header(name, info["corpora"][name])
        lines += ["| method | images/s | rounds | peak RSS MB | CPU ms/image | × Keras threads | same batches |",
                  "|---|---:|---|---:|---:|---:|---|"]
        refs = []
        for method, s in results.items():
            if s["reference"]:
                refs.append((method, s))
                continue
            lines.append(_row(method, s))
        if refs:
            lines += ["", "Single-thread decode + resize (uint8, no normalization), references:", "",
                      "| reference | images/s | rounds | ms/image | peak RSS MB | CPU ms/image | same batches |",
                      "|---|---:|---|---:|---:|---:|---|"]
            for method, s in refs:
                if s["status"] != "ok":
                    lines.append(f"| {s['label']} (`{method}`) | | | | | | {_check(s)} |")
                    continue
                lines.append(f"| {s['label']} (`{method}`) | {s['images_per_s']:.0f} | {_rounds(s['images_per_s_rounds'])}"
                             f" | {1e3 / s['images_per_s']:.2f} | {s['peak_rss_mb']:.0f} | {s['cpu_ms_per_image']:.2f}"
                             f" | {_check(s)} |")
            pil, sh = results.get("ref-pillow-1t"), results.get("ref-stokehold-1t")
            if pil and sh and pil["status"] == sh["status"] == "ok":
                lines += ["", f"stokehold / Pillow draft, one thread: {sh['images_per_s'] / pil['images_per_s']:.2f}×."]
        ts = info.get("targets", {}).get(name, [])
        if ts:
            lines += ["", "Targets (ratios of images/s in the same round; median and worst round):", "",
                      "| figure | median | worst round | target | met |", "|---|---:|---:|---:|---|"]
            for t in ts:
                met = "yes" if t["worst"] >= t["wanted"] else ("median only" if t["median"] >= t["wanted"] else "**no**")
                lines.append(f"| {t['target']} | {t['median']:.2f}× | {t['worst']:.2f}× | ≥ {t['wanted']}× | {met} |")
        lines.append("")
    mc = info["memcpy"]
    if mc["gb_per_s"]:
        per_round = ", ".join(f"{r['gb_per_s']:.2f}" for r in mc["runs"] if r["status"] == "ok")
        lines += [f"Memory copy, numpy, 1 thread, 256 MiB: {mc['gb_per_s']:.2f} GB/s (rounds: {per_round}), the rate of"
                  f" {mc['float32_images_per_s']:.0f} float32 224×224×3 images/s of output bytes.", ""]
    lines += [f"Run time: {info['wall_s'] / 60:.1f} min.", ""]
    return "\n".join(lines)


def _row(method: str, s: Dict[str, Any]) -> str:
    name = f"{s['label']} (`{method}`)"
    if s["status"] != "ok":
        return f"| {name} | | | | | | {_check(s)} |"
    ratio = s.get("ratio_to_baseline")
    ratio_text = "—" if ratio is None or not s["counted"] else f"{ratio:.2f}"
    return (f"| {name} | {s['images_per_s']:.0f} | {_rounds(s['images_per_s_rounds'])} | {s['peak_rss_mb']:.0f}"
            f" | {s['cpu_ms_per_image']:.2f} | {ratio_text} | {_check(s)} |")


def chart(info: Dict[str, Any], path: Path) -> str:
    """A horizontal bar chart of images/s, one panel per corpus; says what it did."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (pip install matplotlib): no chart; results.json and results.md written"
    corpora = list(info["results"])
    methods = [m for m in METHODS if not METHODS[m].reference and any(m in info["results"][c] for c in corpora)]
    fig, axes = plt.subplots(1, len(corpora), figsize=(10 * len(corpora), 1.2 + 0.45 * len(methods)), squeeze=False,
                             sharey=True)
    for ax, name in zip(axes[0], corpora):
        results = info["results"][name]
        values = [results[m]["images_per_s"] for m in methods if results.get(m, {}).get("status") == "ok"]
        low = min(values) / 3 if values else 1
        for y, m in enumerate(methods):
            s = results.get(m)
            if s is None:
                continue
            if s["status"] != "ok":
                ax.text(low, y, f"  {s['status']}: {s['reason'][:60]}", va="center", fontsize=8, color="0.4")
                continue
            color = "tab:orange" if m == BASELINE else "tab:blue" if m.startswith("stokehold") else "0.55"
            ax.barh(y, s["images_per_s"], color=color if s["counted"] else "white", edgecolor=color,
                    hatch=None if s["counted"] else "///", left=0)
            note = (f" {s['images_per_s']:,.0f}/s · {s['peak_rss_mb']:,.0f} MB · {s['cpu_ms_per_image']:.2f} CPU ms/img"
                    + ("" if s["counted"] else " · NOT COUNTED"))
            ax.text(s["images_per_s"], y, note, va="center", fontsize=7.5,
                    bbox=dict(facecolor="white", edgecolor="none", pad=0.3, alpha=0.8))
        mc = info["memcpy"].get("float32_images_per_s")
        if mc:
            ax.axvline(mc, color="tab:red", linestyle="--", linewidth=1)
            ax.text(mc, -0.55, " memory copy, 1 thread (float32 output bytes)", color="tab:red", fontsize=7)
        c = info["corpora"][name]
        ax.set_title(f"{name}: {c['images']} JPEGs, mean {c['mean_width']:.0f}×{c['mean_height']:.0f},"
                     f" batches of {c['batch_size']}", fontsize=10)
        ax.set_xscale("log")
        if values:
            ax.set_xlim(low, max(values + ([mc] if mc else [])) * 300)
        ax.set_yticks(range(len(methods)))
        ax.set_yticklabels([METHODS[m].label for m in methods], fontsize=8)
        ax.set_ylim(len(methods) - 0.2, -0.8)
        ax.set_xlabel("images/s (log scale), median of rounds")
    m = info["machine"]
    title = (f"224×224 batches, {info['settings']['threads']} threads; "
             f"{m['cpu']}, {m['cores_usable']} cores; {info['date']}")
    if info["quick"]:
        title = "QUICK SMOKE TEST, not results: " + title
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return f"wrote {path}"

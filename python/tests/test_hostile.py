"""Hostile and unlucky inputs, tried as a new user would, each with its
documented outcome: a finding and a skip, or a clear error naming the file,
line, sample or parameter; never an abort, a panic, a hang, or silently
wrong data. Regressions of the reliability issue are named by its item
numbers. The corpus is made by code (``hostile.py``)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Dict, List

import h5py
import numpy as np
import pytest
from PIL import Image

import stokehold

import hostile
from conftest import interrupt

STOKEHOLD = str(Path(sys.executable).parent / "stokehold")


def run_child(code: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Runs `code` in a fresh Python; a hang fails the test instead of blocking it."""
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=timeout)


def assert_clear(message: str) -> None:
    """One statement of the problem: no repeated OS error, no Rust debug text."""
    assert message.count("(os error") == 0, message
    for rust in ("Some(", "None)", "Error {", "kind:", "Os {", "PyErr", "panicked"):
        assert rust not in message, message


@pytest.fixture(scope="module")
def small(shapes: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("hostile") / "small.h5"
    stokehold.pack(shapes / "instances.json", out, size=16, progress=False)
    return out


# -- images: every kind decodes, or is a finding -------------------------------


def image_corpus(root: Path) -> Dict[str, str]:
    """Image files and the finding kind each must give ("" for none)."""
    d = root / "imgs" / "c"
    d.mkdir(parents=True)
    im = hostile.photo(64, 48)
    good = hostile.jpeg(im)
    cases: Dict[str, bytes] = {
        "ok.jpg": good,
        "zero.jpg": b"",
        "text.jpg": b"hello, this is not an image\n",
        "cut_header.jpg": good[:20],
        "cut_scan.jpg": good[: len(good) * 2 // 3],
        "cut_then_eoi.jpg": hostile.truncated_with_eoi(good),  # item 10
        "taller_frame.jpg": hostile.enlarged_frame(good),  # item 10
        "corrupt_scan.jpg": hostile.corrupt_entropy(good),
        "bad_crc.png": hostile.bad_crc_png(hostile.png(im)),
        "huge_header.png": hostile.huge_png_header(),
        "one_pixel.png": hostile.png(Image.new("RGB", (1, 1), (9, 8, 7))),
        "sixteen.png": hostile.png(Image.fromarray(np.full((8, 8), 40000, np.uint16))),
        "cmyk.jpg": hostile.jpeg(im.convert("CMYK")),
        "palette_alpha.png": hostile.png(im.convert("P", palette=Image.ADAPTIVE, colors=8), transparency=0),
        "top_down.bmp": hostile.bmp_top_down(im),  # item 18
        "progressive.jpg": hostile.jpeg(im, progressive=True),
        "uni ü \"quote\" 'x'.png": hostile.png(im),
    }
    for name, data in cases.items():
        (d / name).write_bytes(data)
    expected = {name: "" for name in cases}
    expected.update(
        {
            "zero.jpg": "empty_file",
            "text.jpg": "not_an_image",
            "cut_header.jpg": "not_an_image",
            "huge_header.png": "too_large",
        }
    )
    # These pass the header probe; decoding them fails at pack.
    for name in ("cut_scan.jpg", "cut_then_eoi.jpg", "taller_frame.jpg", "corrupt_scan.jpg", "bad_crc.png"):
        expected[name] = "pack:not_an_image"
    return expected


def test_every_image_is_decoded_or_reported(tmp_path: Path) -> None:
    expected = image_corpus(tmp_path)
    m = stokehold.index(tmp_path / "imgs", progress=False)
    found = {Path(f.path).name: f.kind for f in m.findings}
    for name, kind in expected.items():
        if kind and not kind.startswith("pack:"):
            assert found.get(name) == kind, (name, found.get(name))
        else:
            assert name not in found, (name, found[name])
    report = stokehold.pack(m, tmp_path / "out.h5", size=(24, 32), progress=False)
    packed = {Path(f.path).name: f.kind for f in report.findings}
    for name, kind in expected.items():
        if kind.startswith("pack:"):
            assert packed.get(name) == kind[5:], (name, packed.get(name))
    for f in report.findings:
        assert f.skipped and Path(f.path).name in f.message or f.message, f
        assert_clear(f.message)
    with h5py.File(tmp_path / "out.h5", "r") as f:
        names = [Path(p).name for p in f["paths"].asstr()[:]]
        ok = [n for n, k in expected.items() if not k]
        assert sorted(names) == sorted(ok)
        # Item 18: the top-down BMP is upright, as Pillow decodes it.
        i = names.index("top_down.bmp")
        ref = np.asarray(Image.open(tmp_path / "imgs" / "c" / "top_down.bmp").convert("RGB").resize((32, 24), Image.BILINEAR))
        assert np.abs(f["images"][i].astype(int) - ref.astype(int)).mean() < 3


def test_a_png_whose_iccp_inflates_to_a_gigabyte_costs_no_memory(tmp_path: Path) -> None:
    """Item 11: an iCCP chunk that inflates to a gigabyte took ~800 MB per
    decode per worker. Ancillary chunks are now bounded by the image's own
    size (plus 16 MB): the profile is dropped, the pixels decode."""
    plain = hostile.png(hostile.photo(16, 16))
    bomb = tmp_path / "c" / "bomb.png"
    bomb.parent.mkdir()
    bomb.write_bytes(hostile.with_iccp_bomb(plain))
    (tmp_path / "plain.png").write_bytes(plain)
    out = run_child(
        f"""
        import resource, h5py, stokehold
        import numpy as np
        from PIL import Image
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        stokehold.pack({str(tmp_path)!r}, {str(tmp_path / "o.h5")!r}, size=16, progress=False)
        grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
        with h5py.File({str(tmp_path / "o.h5")!r}) as f:
            same = (f["images"][0] == np.asarray(Image.open({str(tmp_path / "plain.png")!r}))).all()
        print(grew, same)
        """
    )
    assert out.returncode == 0, out.stderr
    grew, same = out.stdout.split()
    assert same == "True"
    assert int(grew) < 200_000, f"peak memory grew {grew} kB"


# -- files that are not regular files, endless files ------------------------------


def test_fifos_and_devices_never_block_or_fill_memory(tmp_path: Path) -> None:
    """Items 3, 4: a FIFO named *.jpg blocked `index` forever; /dev/zero as a
    CSV, manifest or sample was read until memory ran out."""
    (tmp_path / "root" / "c").mkdir(parents=True)
    (tmp_path / "root" / "c" / "ok.png").write_bytes(hostile.png(hostile.photo(8, 8)))
    hostile.fifo(tmp_path / "root" / "c" / "pipe.jpg")
    (tmp_path / "dev.csv").write_text(f"path,label\n/dev/zero,a\n{tmp_path / 'root' / 'c' / 'ok.png'},a\n")
    out = run_child(
        f"""
        import stokehold
        m = stokehold.index({str(tmp_path / "root")!r}, progress=False)
        print([ (f.kind, f.message) for f in m.findings ])
        m = stokehold.index({str(tmp_path / "dev.csv")!r}, progress=False)
        print([ (f.kind, f.message) for f in m.findings ], len(m))
        for fmt in ("csv", "manifest", "coco"):
            try:
                stokehold.index("/dev/zero", format=fmt, progress=False)
            except stokehold.StokeholdError as e:
                print(type(e).__name__, e)
        """,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert "FIFO" in lines[0] and "unreadable" in lines[0], lines[0]
    # Refused before anything is read, so safe to try here too.
    with pytest.raises(stokehold.StokeholdIOError, match="character device") as err:
        stokehold.index("/dev/zero", format="csv", progress=False)
    assert err.value.filename == "/dev/zero" and str(err.value).startswith("/dev/zero: ")
    assert "character device" in lines[1] and lines[1].endswith(" 1"), lines[1]
    assert all("character device" in line for line in lines[2:5]), lines


def test_a_sample_that_becomes_a_fifo_fails_its_batch_at_once(tmp_path: Path) -> None:
    """Item 4: `ds[0]` blocked forever on a sample replaced by a FIFO."""
    d = tmp_path / "c"
    d.mkdir()
    for i in range(4):
        (d / f"{i}.png").write_bytes(hostile.png(hostile.photo(8, 8, seed=i)))
    ds = stokehold.Dataset(tmp_path, size=8, batch_size=2, shuffle=False, normalize=False, outputs="indices", progress=False)
    (d / "1.png").unlink()
    hostile.fifo(d / "1.png")
    with pytest.raises(stokehold.SampleError, match="FIFO") as err:
        ds.batch(0)
    assert err.value.index == 1 and err.value.path.endswith("1.png")
    assert ds.batch(1).tolist() == [2, 3]


# -- annotation files -----------------------------------------------------------


def test_broken_annotation_files(tmp_path: Path) -> None:
    ok = tmp_path / "ok.png"
    ok.write_bytes(hostile.png(hostile.photo(8, 8)))
    cases = {
        "truncated.json": ('{"images": [{"id": 1, "file_name": "ok.png"}], "categ', stokehold.InvalidSourceError),
        "wrong.json": ('{"images": 5, "categories": []}', stokehold.InvalidSourceError),
        "empty.csv": ("", stokehold.InvalidSourceError),
        "nocolumn.csv": ("file,class\nok.png,a\n", stokehold.InvalidSourceError),
        "bad.jsonl": ('{"format":"stokehold-manifest","format_version":2,"classes":["a"]}\n{"path": 3}\n', stokehold.InvalidSourceError),
        "future.jsonl": ('{"format":"stokehold-manifest","format_version":99,"classes":[]}\n', stokehold.InvalidSourceError),
    }
    for name, (text, cls) in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(cls) as err:
            stokehold.index(tmp_path / name, progress=False)
        assert name in str(err.value) and err.value.filename.endswith(name), str(err.value)
        assert_clear(str(err.value))
    bad = tmp_path / "bad.jsonl"
    with pytest.raises(stokehold.InvalidSourceError) as err:
        stokehold.Manifest.load(bad)
    assert err.value.line == 2 and "line 2" in str(err.value)
    # VOC: a broken XML is a finding for its file, the rest is read.
    voc = tmp_path / "voc"
    (voc / "Annotations").mkdir(parents=True)
    (voc / "JPEGImages").mkdir()
    shutil.copy(ok, voc / "JPEGImages" / "ok.png")
    (voc / "Annotations" / "a.xml").write_text(
        "<annotation><filename>ok.png</filename><object><name>a</name>"
        "<bndbox><xmin>1</xmin><ymin>1</ymin><xmax>4</xmax><ymax>4</ymax></bndbox></object></annotation>"
    )
    (voc / "Annotations" / "b.xml").write_text("<annotation><filename>ok.png")
    (voc / "Annotations" / "c.xml").write_bytes(b"<annotation>\xff\xfe</annotation>")
    m = stokehold.index(voc, progress=False)
    assert len(m) == 1 and sorted(Path(f.path).name for f in m.findings) == ["b.xml", "c.xml"]


def test_a_bad_csv_row_is_one_finding_naming_its_line(tmp_path: Path) -> None:
    """Item 8: a row with invalid UTF-8, or an unterminated quote, silently
    dropped every row after it; item 20: CSV findings lacked the line."""
    for i in range(5):
        (tmp_path / f"{i}.png").write_bytes(hostile.png(hostile.photo(8, 8, seed=i)))
    data = b'path,label\n0.png,a\n1.png,\xff\n"2.png,b\n3.png,a\n4.png,b,5,6,7,8\n'
    (tmp_path / "l.csv").write_bytes(data)
    m = stokehold.index(tmp_path / "l.csv", progress=False)
    assert sorted(Path(s.path).name for s in m) == ["0.png", "3.png", "4.png"]
    assert [f.location for f in m.findings] == ["line 3", "line 4"]
    assert all(f.message.startswith(f.location) for f in m.findings)


def test_non_utf8_names_round_trip_from_index_to_pack(tmp_path: Path) -> None:
    """Item 9: such names were written with U+FFFD and then reported missing at pack."""
    d = os.fsencode(tmp_path / "c")
    os.mkdir(d)
    with open(d + b"/caf\xe9 \xff.png", "wb") as f:
        f.write(hostile.png(hostile.photo(8, 8)))
    m = stokehold.index(tmp_path, progress=False)
    assert len(m) == 1 and os.fsencode(m[0].path).endswith(b"caf\xe9 \xff.png")
    m.save(tmp_path / "m.jsonl")
    back = stokehold.Manifest.load(tmp_path / "m.jsonl")
    assert back[0].path == m[0].path
    report = stokehold.pack(tmp_path / "m.jsonl", tmp_path / "o.h5", size=8, progress=False)
    assert report.num_samples == 1 and report.findings == []


def test_exif_rotated_boxes_keep_their_class(tmp_path: Path) -> None:
    """Item 7: boxes (displayed orientation) were clipped or dropped against
    the stored size at index time, and the sample could lose its class."""
    stored = hostile.photo(80, 40)  # stored landscape
    exif = Image.Exif()
    exif[0x0112] = 6  # displayed 40 × 80, portrait
    (tmp_path / "p.jpg").write_bytes(hostile.jpeg(stored, exif=exif.tobytes()))
    (tmp_path / "l.csv").write_text("path,label,x_min,y_min,x_max,y_max\np.jpg,cat,5,50,35,78\n")
    m = stokehold.index(tmp_path / "l.csv", progress=False)
    assert m.findings == [] and (m[0].width, m[0].height) == (40, 80)
    assert m[0].class_name == "cat" and m[0].boxes[0].bbox == (5.0, 50.0, 35.0, 78.0)
    report = stokehold.pack(m, tmp_path / "o.h5", size=(80, 40), progress=False)
    with h5py.File(tmp_path / "o.h5", "r") as f:
        assert f["boxes"][:].tolist() == [[5.0, 50.0, 35.0, 78.0]] and f["labels"][0] == 0
    assert report.findings == []


# -- damaged packed files ----------------------------------------------------------


def test_damaged_packed_files_are_refused_the_same_way_everywhere(small: Path, tmp_path: Path) -> None:
    """Items 1, 2, 12, 13, 20: damaged sizes aborted the process; a class
    that is not UTF-8 raised PanicException; out-of-range labels, NaN
    statistics and boxes were served; an external link was read at the
    wrong offsets; the same damaged file raised OSError from inspect and
    ValueError from Dataset."""
    other = tmp_path / "other.h5"
    other.write_bytes(small.read_bytes())
    files = hostile.damaged_files(small, other, tmp_path / "dmg")
    reasons = {
        "labels_2e40": "/labels",
        "images_2e31": "image_shape",
        "images_wrap": "image_shape",
        "num_samples_huge": "num_samples",
        "classes_not_utf8": "UTF-8",
        "label_negative": "label -5",
        "label_huge": "label 1000000000000",
        "label_past_classes": "label 6",
        "classes_short": "outside the 1 classes",
        "mean_nan": "mean",
        "std_inf": "std",
        "box_nan": "not finite",
        "images_external_link": "link into another file",
        "images_chunked": "contiguous",
        "images_compressed": "compressed",
        "no_format_attr": "not a stokehold file",
    }
    assert set(reasons) == set(files)
    for name, path in files.items():
        for call in (stokehold.inspect, lambda p: stokehold.Dataset(p)):
            with pytest.raises(stokehold.InvalidFileError) as err:
                call(path)
            assert reasons[name] in str(err.value) and str(path) in str(err.value), (name, str(err.value))
            assert err.value.filename == str(path)
            assert_clear(str(err.value))
    # The CLI says the same in one line and exits 1.
    out = subprocess.run([STOKEHOLD, "inspect", str(files["labels_2e40"])], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and out.stderr.count("\n") == 1 and "/labels" in out.stderr


def test_a_corrupt_h5_is_a_packed_file_error_not_a_csv_error(tmp_path: Path) -> None:
    """Item 20: a corrupt .h5 was parsed as a CSV ("no `path` column")."""
    bad = tmp_path / "x.h5"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + os.urandom(200))
    for call in (stokehold.inspect, lambda p: stokehold.Dataset(p)):
        with pytest.raises(stokehold.InvalidFileError, match="not an HDF5 file"):
            call(bad)
    (tmp_path / "y.h5").write_text("path,label\n")
    with pytest.raises(stokehold.InvalidFileError):
        stokehold.Dataset(tmp_path / "y.h5")
    with pytest.raises(stokehold.InvalidSourceError, match="HDF5"):
        stokehold.index(bad)


def test_a_zero_std_is_refused_when_normalizing(small: Path, tmp_path: Path) -> None:
    """Item 12: a zero std was silently replaced by 1."""
    flat = hostile.rewrite(small, tmp_path / "flat.h5", lambda f: f.attrs.__setitem__("std", np.array([0.0, 1.0, 1.0])))
    assert stokehold.inspect(flat)["std"][0] == 0.0
    with pytest.raises(stokehold.InvalidArgumentError, match="std of channel 0 is 0"):
        stokehold.Dataset(flat)
    assert stokehold.Dataset(flat, normalize=False, batch_size=4)[0][0].dtype == np.float32
    assert stokehold.Dataset(flat, std=[1, 1, 1], batch_size=4)[0][0].dtype == np.float32


def test_a_file_overwritten_while_open_fails_clearly(small: Path, tmp_path: Path, shapes: Path) -> None:
    """Item 14: `cp other.h5 data.h5` over an open file gave new pixels with old labels."""
    path = tmp_path / "data.h5"
    path.write_bytes(small.read_bytes())
    other = tmp_path / "other.h5"
    stokehold.pack(shapes / "images", other, size=16, progress=False)
    ds = stokehold.Dataset(path, batch_size=4, shuffle=False)
    ds[0]
    shutil.copyfile(other, path)  # same inode, new content
    with pytest.raises(stokehold.SampleError, match="changed after it was opened"):
        ds.batch(1)


# -- pack safety -----------------------------------------------------------------


def test_pack_refuses_to_overwrite_its_own_input(tmp_path: Path, shapes: Path) -> None:
    """Item 15: `pack X -o X --force` overwrote its input."""
    m = tmp_path / "m.jsonl"
    stokehold.index(shapes / "images", progress=False).save(m)
    before = m.read_bytes()
    with pytest.raises(stokehold.InvalidArgumentError, match="is the source being packed"):
        stokehold.pack(m, m, size=8, force=True, progress=False)
    out = subprocess.run([STOKEHOLD, "pack", str(m), "-o", str(m), "--force", "--size", "8"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "source being packed" in out.stderr
    img = Path(stokehold.Manifest.load(m)[0].path)
    with pytest.raises(stokehold.InvalidArgumentError, match="one of the images"):
        stokehold.pack(m, img, size=8, force=True, progress=False)
    assert m.read_bytes() == before and img.stat().st_size > 0


def test_checks_that_would_fail_at_the_end_run_before_decoding(tmp_path: Path, shapes: Path) -> None:
    """Item 19: more than ~4,096 classes failed at the very end of pack;
    class names with NUL, an output that is a directory, an output being
    written by another pack must fail before anything is decoded."""
    d = tmp_path / "many"
    img = hostile.png(hostile.photo(4, 4))
    for i in range(5000):
        c = d / f"class-{i:05d}-{'x' * 20}"
        c.mkdir(parents=True)
        (c / "a.png").write_bytes(img)
    report = stokehold.pack(d, tmp_path / "many.h5", size=4, progress=False)
    assert report.num_samples == 5000 and len(stokehold.inspect(tmp_path / "many.h5")["classes"]) == 5000
    assert len(stokehold.Dataset(tmp_path / "many.h5", batch_size=64).classes) == 5000

    csv = tmp_path / "nul.csv"
    (tmp_path / "a.png").write_bytes(img)
    csv.write_bytes(b"path,label\na.png,bad\x00name\n")
    start = time.monotonic()
    with pytest.raises(stokehold.InvalidArgumentError, match="NUL"):
        stokehold.pack(csv, tmp_path / "nul.h5", size=4, progress=False)
    (tmp_path / "dir.h5").mkdir()
    with pytest.raises(stokehold.InvalidArgumentError, match="is a directory"):
        stokehold.pack(shapes / "images", tmp_path / "dir.h5", size=4, progress=False)
    assert time.monotonic() - start < 5
    # A second pack to an output being written fails at once.
    out = tmp_path / "busy.h5"
    first = subprocess.Popen([STOKEHOLD, "pack", str(shapes / "images"), "-o", str(out), "--size", "512x512", "--threads", "1", "--quiet"])
    deadline = time.monotonic() + 30
    while not list(tmp_path.glob(".busy.h5.stokehold-lock")) and time.monotonic() < deadline:
        time.sleep(0.01)
    second = subprocess.run([STOKEHOLD, "pack", str(shapes / "images"), "-o", str(out), "--size", "8", "--force"], capture_output=True, text=True, timeout=30)
    first.wait(timeout=120)
    assert second.returncode == 1 and "being written by another pack" in second.stderr, second.stderr
    assert first.returncode == 0 and out.exists()
    assert not list(tmp_path.glob(".busy.h5.stokehold-lock")), "the lock file is removed"


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_during_pack_clean_up(shapes: Path, tmp_path: Path, sig: int) -> None:
    """Item 17: SIGTERM or SIGHUP left the temporary file behind."""
    for how in ("cli", "python"):
        out = tmp_path / f"{how}.h5"
        if how == "cli":
            cmd = [STOKEHOLD, "pack", str(shapes / "images"), "-o", str(out), "--size", "1024x1024", "--threads", "1"]
        else:
            code = f"import stokehold; stokehold.pack({str(shapes / 'images')!r}, {str(out)!r}, size=1024, num_threads=1, progress=False)"
            cmd = [sys.executable, "-c", code]
        child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while not list(tmp_path.glob(".stokehold-*.h5.tmp")) and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.3)
        assert child.poll() is None, "the pack finished before it could be stopped"
        child.send_signal(sig)
        child.wait(timeout=60)
        assert child.stderr is not None
        child.stderr.close()
        assert child.returncode in (128 + sig, -sig), (how, child.returncode)
        assert not out.exists()
        assert not list(tmp_path.glob(".stokehold-*")) and not list(tmp_path.glob(f".{how}.h5.stokehold-lock")), how


# -- threads, fork, Ctrl-C ----------------------------------------------------------


def test_absurd_thread_counts_are_refused_at_once(tmp_path: Path, shapes: Path) -> None:
    """Item 5: `--workers 100000` spawned threads for 40 s before doing anything."""
    start = time.monotonic()
    out = subprocess.run([STOKEHOLD, "index", str(shapes / "images"), "-o", str(tmp_path / "m.jsonl"), "--threads", "100000"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and "--threads must be between 1 and" in out.stderr
    for call in (
        lambda: stokehold.index(shapes / "images", num_threads=100_000),
        lambda: stokehold.Dataset(shapes / "images", size=8, normalize=False, num_threads=100_000),
    ):
        with pytest.raises(stokehold.InvalidArgumentError, match="num_threads must be between 1 and"):
            call()
    env = {**os.environ, "STOKEHOLD_NUM_THREADS": "100000"}
    out = subprocess.run([sys.executable, "-c", f"import stokehold; stokehold.index({str(shapes / 'images')!r})"], capture_output=True, text=True, env=env, timeout=30)
    assert out.returncode == 1 and "STOKEHOLD_NUM_THREADS must be between" in out.stderr
    assert time.monotonic() - start < 20


def test_every_source_format_indexes_in_a_forked_child(shapes: Path) -> None:
    """Item 6: VOC in a process forked after an index ran in the parent hung
    (rayon's global pool has no threads in the child)."""
    sources = {
        "folder": shapes / "images",
        "csv": shapes / "labels.csv",
        "coco": shapes / "instances.json",
        "voc": shapes / "voc",
    }
    manifest = shapes / "fork-manifest.jsonl"
    stokehold.index(sources["coco"], progress=False).save(manifest)
    sources["manifest"] = manifest
    for source in sources.values():
        stokehold.index(source, num_threads=2, progress=False)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - reports through the exit status
        code = 1
        try:
            signal.alarm(60)  # a hang ends the child instead of the test run
            ok = all(len(stokehold.index(s, num_threads=2, progress=False)) > 0 for s in sources.values())
            code = 0 if ok else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


@pytest.mark.slow
def test_ctrl_c_stops_a_batch_of_huge_images_at_once(tmp_path: Path) -> None:
    """Item 4: a batch of six 100-megapixel PNGs took 2.6 s to react to Ctrl-C."""
    d = tmp_path / "big" / "c"
    d.mkdir(parents=True)
    Image.new("RGB", (10_000, 10_000), (30, 60, 90)).save(d / "0.png", compress_level=1)
    for i in range(1, 6):
        os.link(d / "0.png", d / f"{i}.png")
    for call in ("ds[0]", "ds.batch(0)"):
        script = f"""
import stokehold
ds = stokehold.Dataset({str(tmp_path / "big")!r}, size=32, batch_size=6, num_threads=1, prefetch=1,
                       normalize=False, progress=False)
print("ready", flush=True)
try:
    {call}
    print("finished", flush=True)
except KeyboardInterrupt:
    print("interrupted", flush=True)
"""
        line, waited, status = interrupt(script, 1.0)
        assert line == "interrupted", call
        # A hang guard with room for a loaded machine; the poll is every 20 ms.
        assert waited < 0.5, f"{call}: took {waited:.2f}s to react to Ctrl-C"


# -- the loader -------------------------------------------------------------------


def test_after_close_every_call_raises(small: Path) -> None:
    """Item 16: after close(), the next call silently restarted the epoch."""
    ds = stokehold.Dataset(small, batch_size=4)
    first = ds[0]
    ds.close()
    ds.close()
    for call in (lambda: ds[1], lambda: ds.batch(0), lambda: len(ds), lambda: ds.state_dict(), lambda: list(ds)):
        with pytest.raises(stokehold.LoaderClosedError):
            call()
    assert "closed" in repr(ds) and first[0].shape[0] == 4


def test_bad_arguments_name_their_parameter(small: Path, shapes: Path, tmp_path: Path) -> None:
    """Items 20, 21: bare OverflowErrors that never named the parameter;
    out-of-range options accepted silently."""
    cases = [
        (lambda: stokehold.Dataset(small, batch_size=-1), "batch_size"),
        (lambda: stokehold.Dataset(small, seed=-1), "seed"),
        (lambda: stokehold.Dataset(small, num_threads=10**20), "num_threads"),
        (lambda: stokehold.Dataset(small, prefetch=0), "prefetch"),
        (lambda: stokehold.Dataset(small, max_boxes=-3), "max_boxes"),
        (lambda: stokehold.Dataset(small, epoch=-1), "epoch"),
        (lambda: stokehold.Dataset(small, augment={"hflip": 1.5}), "hflip"),
        (lambda: stokehold.Dataset(small, augment={"hflip": float("nan")}), "hflip"),
        (lambda: stokehold.Dataset(small, augment={"random_resized_crop": ((0.9, 0.1), (0.75, 1.3))}), "scale"),
        (lambda: stokehold.Dataset(small, augment={"random_resized_crop": ((0.1, 0.9), (2.0, 1.0))}), "ratio"),
        (lambda: stokehold.Dataset(small, augment={"blur": 1}), "augment"),
        (lambda: stokehold.Dataset(small, std=[0, 1, 1]), "std"),
        (lambda: stokehold.Dataset(small, mean=[float("inf"), 1, 1], std=[1, 1, 1]), "mean"),
        (lambda: stokehold.Dataset(small, size=32), "size"),
        (lambda: stokehold.Dataset(small, channels=1), "channels"),
        (lambda: stokehold.Dataset(small, dtype="float16"), "dtype"),
        (lambda: stokehold.Dataset(small, data_format="NHWC"), "data_format"),
        (lambda: stokehold.Dataset(small, rank=3, world_size=2), "rank"),
        (lambda: stokehold.Dataset(small, on_error="ignore"), "on_error"),
        (lambda: stokehold.Dataset(shapes / "images", size=(-5, 3), normalize=False), "size"),
        (lambda: stokehold.pack(shapes / "images", tmp_path / "q.h5", quality=1000), "quality"),
        (lambda: stokehold.pack(shapes / "images", tmp_path / "q.h5", resize="squash"), "resize"),
        (lambda: stokehold.pack(shapes / "images", tmp_path / "q.h5", size=0), "size"),
        (lambda: stokehold.pack(shapes / "images", tmp_path / "q.h5", fill=-1), "fill"),
        (lambda: stokehold.index(shapes / "images", max_pixels=-1), "max_pixels"),
        (lambda: stokehold.index(shapes / "images", format="xml"), "format"),
        (lambda: stokehold.preview(small, tmp_path / "p.png", n=-1), "n"),
        (lambda: stokehold.Manifest.load(tmp_path / "none.jsonl", max_line_bytes=0), "max_line_bytes"),
    ]
    for call, name in cases:
        with pytest.raises(stokehold.InvalidArgumentError) as err:
            call()
        assert name in str(err.value), (name, str(err.value))
        assert_clear(str(err.value))


def test_messages_say_it_once_and_errors_carry_their_data(tmp_path: Path) -> None:
    """Item 20: messages repeated themselves ("… (os error 2): … (os error 2)")."""
    with pytest.raises(stokehold.SourceNotFoundError) as err:
        stokehold.Manifest.load(tmp_path / "none.jsonl")
    assert err.value.errno == 2 and err.value.filename == str(tmp_path / "none.jsonl")
    assert isinstance(err.value, FileNotFoundError)
    assert_clear(str(err.value))
    out = subprocess.run([STOKEHOLD, "split", str(tmp_path / "none.jsonl")], capture_output=True, text=True, timeout=30)
    assert out.returncode == 1 and out.stderr.count("No such file or directory") == 1, out.stderr
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro" / "x.h5").mkdir()
    with pytest.raises(stokehold.StokeholdError):
        stokehold.inspect(tmp_path / "ro" / "x.h5")


def test_on_error_skip_keeps_batch_shapes(tmp_path: Path) -> None:
    """Item 22: one bad image failed its whole batch, with no way to go on."""
    d = tmp_path / "c"
    d.mkdir()
    for i in range(8):
        (d / f"{i}.png").write_bytes(hostile.png(hostile.photo(8, 8, seed=i)))
    ds = stokehold.Dataset(tmp_path, size=8, batch_size=4, shuffle=False, normalize=False, outputs=("images", "indices"), on_error="skip", progress=False)
    strict = stokehold.Dataset(tmp_path, size=8, batch_size=4, shuffle=False, normalize=False, progress=False)
    (d / "2.png").write_bytes(b"broken")
    batches = list(ds)
    assert [b[0].shape[0] for b in batches] == [4, 4]
    assert [b[1].tolist() for b in batches] == [[0, 1, 3, 3], [4, 5, 6, 7]]
    assert ds.num_skipped == 1 and ds.skipped[0].sample == 2 and "2.png" in ds.skipped[0].reason
    with pytest.raises(stokehold.SampleError) as err:
        strict[0]
    assert err.value.index == 2


def test_nothing_to_pack_and_indices_past_the_end(tmp_path: Path, small: Path) -> None:
    d = tmp_path / "c"
    d.mkdir()
    for i in range(3):
        (d / f"{i}.jpg").write_bytes(hostile.truncated_with_eoi(hostile.jpeg(hostile.photo(32, 32, seed=i))))
    with pytest.raises(stokehold.EmptyDatasetError) as err:
        stokehold.pack(tmp_path, tmp_path / "o.h5", size=8, progress=False)
    assert len(err.value.findings) == 3 and not (tmp_path / "o.h5").exists()
    ds = stokehold.Dataset(small, batch_size=4)
    for call in (lambda: ds[len(ds)], lambda: ds.batch(len(ds))):
        with pytest.raises(stokehold.SampleIndexError) as e:
            call()
        assert isinstance(e.value, IndexError)
    assert e.value.index == len(ds)


def test_every_exception_class_is_raised_somewhere() -> None:
    """Each class of stokehold.errors is raised by at least one test of this
    suite (searched in the test sources)."""
    sources = "".join(p.read_text() for p in Path(__file__).parent.glob("test_*.py"))
    for name in stokehold.errors.__all__:
        if name == "StokeholdError":
            continue
        assert re.search(rf"pytest\.raises\(stokehold\.{name}\b", sources), name


def test_a_packed_file_that_loops_libhdf5_is_an_error_not_a_hang(tmp_path: Path) -> None:
    """Found by fuzzing (fuzz/findings/packed-1-min): a global heap whose
    free-space object has size 0 made libhdf5 loop forever on open. In a
    child process: libhdf5's looping thread stays behind, holding its lock."""
    damaged = Path(__file__).parent / "data" / "global-heap-loop.h5"
    script = textwrap.dedent(
        """
        import sys, time
        import stokehold
        start = time.monotonic()
        for call in (lambda: stokehold.Dataset(sys.argv[1]), lambda: stokehold.inspect(sys.argv[1])):
            try:
                call()
            except stokehold.InvalidFileError as e:
                assert "global-heap-loop.h5" in str(e) and "damaged" in str(e), e
            else:
                raise SystemExit("opened")
        print("refused in", round(time.monotonic() - start, 1), "s")
        """
    )
    env = {**os.environ, "STOKEHOLD_HDF5_OPEN_TIMEOUT": "2"}
    out = subprocess.run([sys.executable, "-c", script, str(damaged)], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.startswith("refused"), out.stderr[-2000:]

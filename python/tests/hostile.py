"""A corpus of hostile and unlucky inputs, made by code: broken images,
broken annotation files and damaged packed files. Each maker writes into a
folder and returns the path; ``test_hostile.py`` asserts the documented
outcome of each through index, pack and the loaders."""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path
from typing import Callable, Dict

import h5py
import numpy as np
from PIL import Image


def photo(w: int = 64, h: int = 48, seed: int = 0) -> Image.Image:
    """A small image with texture (so that every byte of its JPEG matters)."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (h // 4 + 1, w // 4 + 1, 3), dtype=np.uint8)
    return Image.fromarray(base, "RGB").resize((w, h), Image.BILINEAR)


def jpeg(im: Image.Image, **kw: object) -> bytes:
    out = io.BytesIO()
    im.save(out, "JPEG", quality=90, **kw)
    return out.getvalue()


def png(im: Image.Image, **kw: object) -> bytes:
    out = io.BytesIO()
    im.save(out, "PNG", **kw)
    return out.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def with_iccp_bomb(png_bytes: bytes, inflated: int = 1 << 30) -> bytes:
    """A valid PNG with an iCCP chunk that inflates to `inflated` bytes
    (about a megabyte on disk per gigabyte)."""
    comp = zlib.compressobj(9)
    block = bytes(1 << 24)
    parts = [comp.compress(block) for _ in range(inflated // len(block))]
    parts.append(comp.flush())
    chunk = png_chunk(b"iCCP", b"bomb\0\0" + b"".join(parts))
    # After IHDR (8-byte signature + 25-byte IHDR chunk).
    return png_bytes[:33] + chunk + png_bytes[33:]


def truncated_with_eoi(data: bytes) -> bytes:
    """A JPEG cut in the middle of its scan, with an end-of-image marker
    appended: a naive completeness check passes it."""
    return data[: len(data) // 2] + b"\xff\xd9"


def enlarged_frame(data: bytes, factor: int = 4) -> bytes:
    """A JPEG whose frame header claims `factor` times its height: the
    scan data ends long before the image does."""
    out = bytearray(data)
    i = 2
    while i + 9 < len(out):
        assert out[i] == 0xFF
        marker = out[i + 1]
        length = struct.unpack(">H", out[i + 2 : i + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            h = struct.unpack(">H", out[i + 5 : i + 7])[0]
            out[i + 5 : i + 7] = struct.pack(">H", h * factor)
            return bytes(out)
        i += 2 + length
    raise AssertionError("no frame header")


def corrupt_entropy(data: bytes) -> bytes:
    """Garbage in the middle of the scan data."""
    out = bytearray(data)
    mid = len(out) * 2 // 3
    out[mid : mid + 64] = bytes(range(64))
    return bytes(out)


def bmp_top_down(im: Image.Image) -> bytes:
    """A valid 24-bit BMP stored top-down (negative height)."""
    w, h = im.size
    row = (w * 3 + 3) // 4 * 4
    pixels = np.asarray(im.convert("RGB"))[:, :, ::-1]
    body = b"".join(pixels[y].tobytes().ljust(row, b"\0") for y in range(h))
    header = struct.pack("<2sIHHI", b"BM", 54 + len(body), 0, 0, 54)
    info = struct.pack("<IiiHHIIiiII", 40, w, -h, 1, 24, 0, len(body), 2835, 2835, 0, 0)
    return header + info + body


def huge_png_header(w: int = 60000, h: int = 60000) -> bytes:
    """A PNG whose header claims w × h pixels, with a tiny body."""
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(b"\0" * 100)) + png_chunk(b"IEND", b"")


def bad_crc_png(data: bytes) -> bytes:
    out = bytearray(data)
    out[29] ^= 0xFF  # inside the IHDR CRC
    return bytes(out)


# -- damaged packed files ------------------------------------------------------


def rewrite(src: Path, dst: Path, edit: Callable[[h5py.File], None]) -> Path:
    """A copy of packed file `src` at `dst`, changed by `edit` with h5py."""
    dst.write_bytes(src.read_bytes())
    with h5py.File(dst, "r+") as f:
        edit(f)
    return dst


def replace_dataset(f: h5py.File, name: str, data: np.ndarray, **kw: object) -> None:
    del f[name]
    f.create_dataset(name, data=data, **kw)


def huge_sparse(f: h5py.File, name: str, shape: tuple, dtype: str) -> None:
    """Replace `name` by a chunked dataset of `shape` with no chunk written:
    the file stays small while the dataspace claims terabytes."""
    del f[name]
    f.create_dataset(name, shape=shape, dtype=dtype, chunks=(1,) * len(shape), maxshape=(None,) * len(shape))


def damaged_files(good: Path, other: Path, out: Path) -> Dict[str, Path]:
    """Damaged copies of a small raw packed file `good` (6 classes); `other`
    is another packed file (for an external link)."""
    out.mkdir(parents=True, exist_ok=True)
    n = h5py.File(good, "r").attrs["num_samples"]
    cases: Dict[str, Callable[[h5py.File], None]] = {
        "labels_2e40": lambda f: huge_sparse(f, "labels", (2**40,), "i8"),
        "images_2e31": lambda f: (huge_sparse(f, "images", (2, 2**31, 2**31, 1), "u1"), f.attrs.__setitem__("image_shape", np.array([2**31, 2**31, 1]))),
        "images_wrap": lambda f: f.attrs.__setitem__("image_shape", np.array([2**32, 2**32, 3])),
        "num_samples_huge": lambda f: f.attrs.__setitem__("num_samples", np.int64(2**62)),
        "classes_not_utf8": lambda f: replace_dataset(f, "classes", np.array([b"\xff\xfe", b"ok"] * 3, dtype=object), dtype=h5py.string_dtype("utf-8")),
        "label_negative": lambda f: replace_dataset(f, "labels", np.array([-5] + [0] * (n - 1), dtype=np.int64)),
        "label_huge": lambda f: replace_dataset(f, "labels", np.array([10**12] + [0] * (n - 1), dtype=np.int64)),
        "label_past_classes": lambda f: replace_dataset(f, "labels", np.array([6] + [0] * (n - 1), dtype=np.int64)),
        "classes_short": lambda f: (replace_dataset(f, "classes", np.array(["a"], dtype=object), dtype=h5py.string_dtype("utf-8")), replace_dataset(f, "class_counts", np.array([n], dtype=np.int64))),
        "mean_nan": lambda f: f.attrs.__setitem__("mean", np.array([np.nan, 1.0, 1.0])),
        "std_inf": lambda f: f.attrs.__setitem__("std", np.array([np.inf, 1.0, 1.0])),
        "box_nan": lambda f: replace_dataset(f, "boxes", np.where(np.arange(f["boxes"].size).reshape(-1, 4) == 0, np.nan, f["boxes"][:])),
        "images_external_link": lambda f: (f.__delitem__("images"), f.__setitem__("images", h5py.ExternalLink(str(other), "/images"))),
        "images_chunked": lambda f: replace_dataset(f, "images", f["images"][:], chunks=(1, 8, 8, 3)),
        "images_compressed": lambda f: replace_dataset(f, "images", f["images"][:], compression="gzip"),
        "no_format_attr": lambda f: f.attrs.__delitem__("format"),
    }
    return {name: rewrite(good, out / f"{name}.h5", edit) for name, edit in cases.items()}


def fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path

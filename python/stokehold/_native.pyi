"""Type stubs for the private extension module ``stokehold._native``."""

from typing import Any, Callable, Dict, List, Optional, Tuple, Union, final

__all__ = [
    "Box",
    "CHOICES",
    "DEFAULT_MAX_FILE_BYTES",
    "DEFAULT_MAX_LINE_BYTES",
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MAX_SOURCE_BYTES",
    "EmptyDatasetError",
    "Finding",
    "InvalidArgumentError",
    "InvalidFileError",
    "InvalidSourceError",
    "LoaderClosedError",
    "MAX_THREADS",
    "Manifest",
    "NativeLoader",
    "OutputExistsError",
    "PackReport",
    "PixelBuffer",
    "Sample",
    "SampleError",
    "SampleIndexError",
    "SourceNotFoundError",
    "StokeholdError",
    "StokeholdIOError",
    "StrictModeError",
    "__version__",
    "check_output",
    "cli_main",
    "commit",
    "parse_bytes",
    "index",
    "inspect",
    "pack",
    "preview",
]

__version__: str
CHOICES: Dict[str, List[str]]
DEFAULT_MAX_PIXELS: int
DEFAULT_MAX_FILE_BYTES: int
DEFAULT_MAX_SOURCE_BYTES: int
DEFAULT_MAX_LINE_BYTES: int
MAX_THREADS: int

class StokeholdError(Exception):
    path: Optional[str]
    index: Optional[int]

class SourceNotFoundError(StokeholdError, FileNotFoundError): ...
class StokeholdIOError(StokeholdError, OSError): ...

class InvalidSourceError(StokeholdError, ValueError):
    line: Optional[int]

class InvalidArgumentError(StokeholdError, ValueError): ...

class StrictModeError(StokeholdError, ValueError):
    findings: List[Finding]

class OutputExistsError(StokeholdError, FileExistsError): ...

class EmptyDatasetError(StokeholdError, ValueError):
    findings: List[Finding]

class InvalidFileError(StokeholdError, ValueError): ...
class SampleIndexError(StokeholdError, IndexError): ...
class SampleError(StokeholdError, ValueError): ...
class LoaderClosedError(StokeholdError, RuntimeError): ...

def cli_main(argv: List[str]) -> int: ...
def parse_bytes(text: str) -> int: ...
def commit(
    dir: str, storage_options: Optional[List[Tuple[str, str]]] = None
) -> Tuple[int, int, List[float], List[float]]: ...
def index(
    source: str,
    format: Optional[str],
    strict: bool,
    classes: Optional[List[str]],
    image_root: Optional[str],
    num_threads: Optional[int],
    max_pixels: int,
    max_file_bytes: int,
    max_source_bytes: int,
    max_line_bytes: int,
    progress: Optional[Callable[[int, int], None]],
) -> Manifest: ...
@final
class Box:
    @property
    def bbox(self) -> Tuple[float, float, float, float]: ...
    @property
    def label(self) -> int: ...
    @property
    def class_name(self) -> str: ...
    @property
    def iscrowd(self) -> bool: ...
    @property
    def difficult(self) -> bool: ...

@final
class Sample:
    @property
    def path(self) -> str: ...
    @property
    def label(self) -> Optional[int]: ...
    @property
    def class_name(self) -> Optional[str]: ...
    @property
    def width(self) -> int: ...
    @property
    def height(self) -> int: ...
    @property
    def format(self) -> str: ...
    @property
    def boxes(self) -> List[Box]: ...

@final
class Finding:
    @property
    def kind(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def location(self) -> Optional[str]: ...
    @property
    def message(self) -> str: ...
    @property
    def skipped(self) -> bool: ...

@final
class Manifest:
    @staticmethod
    def load(path: str, max_line_bytes: int, as_source: bool = False) -> Manifest: ...
    def save(self, path: str) -> None: ...
    def __len__(self) -> int: ...
    @property
    def classes(self) -> List[str]: ...
    @property
    def findings(self) -> List[Finding]: ...
    @property
    def source(self) -> Optional[Tuple[str, str]]: ...
    @property
    def num_boxes(self) -> int: ...
    def class_counts(self) -> List[int]: ...
    def sample(self, index: int) -> Sample: ...
    def split(self, val: float, seed: int) -> Tuple[Manifest, Manifest]: ...
    def summary(self) -> str: ...

@final
class PackReport:
    @property
    def path(self) -> str: ...
    @property
    def num_shards(self) -> int: ...
    @property
    def num_samples(self) -> int: ...
    @property
    def num_skipped(self) -> int: ...
    @property
    def findings(self) -> List[Finding]: ...
    @property
    def mean(self) -> List[float]: ...
    @property
    def std(self) -> List[float]: ...
    @property
    def class_counts(self) -> List[int]: ...
    @property
    def seconds(self) -> float: ...
    @property
    def file_bytes(self) -> int: ...
    @property
    def num_threads(self) -> int: ...

def check_output(
    out: str,
    force: bool,
    sharded: bool,
    part: Optional[Tuple[int, int]],
    storage_options: Optional[List[Tuple[str, str]]] = None,
    clear: bool = False,
) -> None: ...
def pack(
    manifest: Union[Manifest, str],
    out: str,
    size: Tuple[int, int],
    resize: str,
    filter: str,
    channels: int,
    storage: str,
    quality: int,
    fill: int,
    num_threads: Optional[int],
    strict: bool,
    force: bool,
    max_pixels: int,
    max_file_bytes: int,
    shard_size: Optional[int],
    samples_per_shard: Optional[int],
    part: Optional[Tuple[int, int]],
    progress: Optional[Callable[[int, int], None]],
    max_size: int = 512,
    multiple: int = 1,
    storage_options: Optional[List[Tuple[str, str]]] = None,
    manifest_as_source: bool = True,
) -> PackReport: ...
def inspect(path: str, storage_options: Optional[List[Tuple[str, str]]] = None) -> Dict[str, Any]: ...
def preview(
    path: str, out: str, n: int = 64, seed: int = 0, storage_options: Optional[List[Tuple[str, str]]] = None
) -> List[int]: ...

@final
class PixelBuffer: ...

@final
class NativeLoader:
    def __new__(
        cls,
        packed: Optional[str],
        manifest: Optional[Manifest],
        size: Optional[Tuple[int, int]],
        resize: str,
        filter: str,
        channels: int,
        batch_size: int,
        shuffle: bool,
        seed: int,
        drop_last: bool,
        rank: int,
        world_size: int,
        shard: str,
        dtype: str,
        data_format: str,
        normalize: bool,
        mean: Optional[List[float]],
        std: Optional[List[float]],
        hflip: float,
        random_resized_crop: Optional[Tuple[Tuple[float, float], Tuple[float, float]]],
        one_hot: bool,
        max_boxes: Optional[int],
        num_threads: Optional[int],
        prefetch: Optional[int],
        in_order: bool,
        epoch: int,
        on_error: str,
        max_pixels: int,
        max_file_bytes: int,
        max_size: int = 512,
        multiple: int = 1,
        buckets: Optional[int] = None,
        bucket_shapes: Optional[List[Tuple[int, int]]] = None,
        storage_options: Optional[List[Tuple[str, str]]] = None,
        cache_dir: Optional[str] = None,
        cache_limit: int = 0,
    ) -> NativeLoader: ...
    def __len__(self) -> int: ...
    def samples_per_epoch(self) -> int: ...
    def io_stats(self) -> Optional[Tuple[int, int, int, int]]: ...
    def source_len(self) -> int: ...
    def positions_per_epoch(self) -> int: ...
    @property
    def bucket_shapes(self) -> Optional[List[Tuple[int, int]]]: ...
    def epoch_indices(self, epoch: int) -> Any: ...
    def order_fingerprint(self) -> int: ...
    @property
    def classes(self) -> List[str]: ...
    @property
    def image_shape(self) -> Tuple[int, int, int]: ...
    @property
    def stats(self) -> Optional[Tuple[List[float], List[float]]]: ...
    def next_batch(self) -> Dict[str, Any]: ...
    def batch(self, epoch: int, index: int) -> Dict[str, Any]: ...
    def skipped(self) -> Tuple[List[Tuple[int, int, str]], int]: ...
    def end_epoch(self) -> None: ...
    def state(self) -> Tuple[int, int, int, int]: ...
    def position(self, epoch: int, batches: int) -> int: ...
    def resume(self, epoch: int, position: int) -> None: ...
    def restore(self, state: Tuple[int, int, int, int]) -> None: ...
    def close(self) -> None: ...

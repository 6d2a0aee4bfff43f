"""TensorBoard summaries: Flax's `SummaryWriter`, written without TensorFlow.

    writer = SummaryWriter("runs/xor/default", auto_flush=False)
    writer.scalar("train/loss", 0.25, 100)        # tag, value, step
    writer.image("views/decision_boundary/train", picture, 100)
    writer.flush()

The calls and their arguments are those of `flax.metrics.tensorboard.
SummaryWriter`, the writer of the Flax examples: `scalar`, `image`,
`histogram`, `text`, `hparams`, `write`, `flush`, `close`. Flax's module
imports TensorFlow (a 600 MB install, and 4-7 s of a core in every process
that imports it) to append records to a file. This one builds the same
Summary protos with TensorBoard's own helpers and appends them itself, in
the trainer's process: an event file is a sequence of TFRecord frames (the
length, its masked CRC-32C, a serialized `Event`, its masked CRC-32C), a
`file_version` event first. tests/test_summaries.py holds what it writes
against what flax's writer writes.

Beside Flax's calls sit the extras this project needs: `write_scalars` and
`write_histograms` (many at one step, as CLU's metric writers name them),
`layout` (CUSTOM SCALARS) and `graph` (GRAPHS).
"""

import contextlib
import functools
import glob
import io
import itertools
import json
import os
import socket
import struct
import time
from collections.abc import Mapping, Sequence

import google_crc32c
import numpy as np
from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2, types_pb2

from plumbing import failures
from plumbing.failures import UserError

_LENGTH, _CRC = struct.Struct("<Q"), struct.Struct("<I")
_file_numbers = itertools.count()  # one process's event files, in order


def _masked_crc(data: bytes) -> bytes:
    """TFRecord's masked CRC-32C of `data`, as 4 little-endian bytes."""
    crc = google_crc32c.value(data)
    return _CRC.pack((((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF)


def disappeared(path: str) -> str:
    """The error for an event file removed under its writer."""
    return f"cannot write summaries: {path} disappeared (was the run directory removed?)"


class SummaryWriter:
    """Writes one run's summaries into a new event file in `log_dir`.

    Flax's interface (see the module docstring). Each event carries the
    wall time of the call that wrote it. With `auto_flush`, every call ends
    on disk; otherwise `flush()` puts everything so far there, where it
    survives even a SIGKILL of this process. A failed write (a full disk,
    a removed run directory) raises UserError, one line.
    """

    def __init__(self, log_dir, auto_flush: bool = True):
        self.log_dir, self._auto_flush = os.fspath(log_dir), auto_flush
        self._file = None
        with failures.reported(f"cannot write summaries to {self.log_dir}"):
            os.makedirs(self.log_dir, exist_ok=True)
            name = f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}"
            self.path = os.path.join(self.log_dir, f"{name}.{os.getpid()}.{next(_file_numbers)}.v2")
            self._file = open(self.path, "xb")  # noqa: SIM115  (closed by close())
        source = event_pb2.SourceMetadata(writer="dashboards.summaries")
        try:
            self._write(event_pb2.Event(file_version="brain.Event:2", source_metadata=source))
            self.flush()
        except BaseException:  # a full disk: no empty event file left behind
            file, self._file = self._file, None
            with contextlib.suppress(OSError):  # (what flush could not write: it raised)
                file.close()
            with contextlib.suppress(OSError):
                os.remove(self.path)
            raise

    # Flax's calls -----------------------------------------------------------

    def scalar(self, tag: str, value, step: int) -> None:
        value = np.float32(np.asarray(value))
        self._summary(step, tag, _metadata("scalars"), _scalar_tensor(value))

    def image(self, tag: str, image, step: int, max_outputs: int = 3) -> None:
        """IMAGES: [H,W], [H,W,1], [H,W,3] or a batch [K,H,W(,1 or 3)] of
        pictures, uint8 or floats in [0, 1]; at most `max_outputs` shown."""
        self._summary(step, tag, _metadata("images"), _image_tensor(image, max_outputs))

    def histogram(self, tag: str, values, step: int, bins: int | None = None) -> None:
        """HISTOGRAMS and DISTRIBUTIONS, over the entries of `values`."""
        from tensorboard.plugins.histogram.summary_v2 import histogram_pb

        self._write_summary(step, histogram_pb(tag, np.reshape(np.asarray(values), -1), bins))

    def text(self, tag: str, textdata: str, step: int) -> None:
        """TEXT, which TensorBoard renders as Markdown."""
        from tensorboard.plugins.text.summary_v2 import text_pb

        if not isinstance(textdata, (str, bytes)):
            raise ValueError("`textdata` should be of the type `str` or `bytes`.")
        self._write_summary(step, text_pb(tag, textdata))

    def write(self, tag: str, tensor, step: int, metadata=None) -> None:
        """Any tensor, for a plugin of one's own (`metadata`: a SummaryMetadata, or its bytes)."""
        from tensorboard.util import tensor_util

        if isinstance(metadata, bytes):
            metadata = summary_pb2.SummaryMetadata.FromString(metadata)
        tensor = tensor_util.make_tensor_proto(np.asarray(tensor))
        self._summary(step, tag, metadata or summary_pb2.SummaryMetadata(), tensor)

    def hparams(self, hparams: Mapping, trial_id: str | None = None) -> None:
        """The HPARAMS dashboard's row for this run (nested mappings are flattened).

        `trial_id` (an extra) names the row; rows that share it are one trial,
        each seed a session of it. Without it TensorBoard shows a hash.
        """
        from tensorboard.plugins.hparams.summary_v2 import hparams_pb

        self._write_summary(0, hparams_pb(flatten(hparams), trial_id=trial_id))

    def flush(self) -> None:
        """Puts everything written so far on disk (the operating system's)."""
        if self._file is None:
            return
        self._io(self._file.flush)
        # Writing into a removed file succeeds without a word (on NFS it is
        # renamed .nfsXXXX instead, its link count left at 1).
        if os.fstat(self._file.fileno()).st_nlink == 0 or not os.path.exists(self.path):
            raise UserError(disappeared(self.path))

    def close(self) -> None:
        """Flushes and closes the event file. Final!"""
        if self._file is not None:
            try:
                self.flush()
            finally:
                file, self._file = self._file, None
                with contextlib.suppress(OSError):  # what flush could not write: it raised
                    file.close()

    # This project's extras --------------------------------------------------

    def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
        for tag, value in scalars.items():
            self.scalar(tag, value, step)

    def write_histograms(self, step: int, arrays: Mapping[str, np.ndarray]) -> None:
        for tag, values in arrays.items():
            self.histogram(tag, values, step)

    def histogram_buckets(self, tag: str, buckets: np.ndarray, step: int) -> None:
        """HISTOGRAMS and DISTRIBUTIONS from counts made elsewhere (a device):
        `buckets` (k, 3) of [left edge, right edge, count], as `histogram` makes."""
        from tensorboard.plugins.histogram import metadata
        from tensorboard.util import tensor_util

        tensor = tensor_util.make_tensor_proto(np.asarray(buckets, np.float64))
        self._summary(step, tag, metadata.create_summary_metadata(None, None), tensor)

    def hparams_columns(self, names: Sequence[str], metrics: Sequence[str]) -> None:
        """The HPARAMS dashboard's columns: these hparams, then these metrics
        (scalars' tags). Without them TensorBoard shows every hparam written
        and every scalar: 100+ columns. (No domain of values: TensorBoard
        would hide the rows of any value a run made later adds.)"""
        from tensorboard.plugins.hparams import summary_v2 as hp

        hparams = [hp.HParam(name) for name in names]
        self._write_summary(0, hp.hparams_config_pb(hparams, [hp.Metric(m) for m in metrics]))

    def layout(self, layout) -> None:
        """The CUSTOM SCALARS dashboard's charts: a `layout_pb2.Layout`.

        TensorBoard merges the layouts of every run, dropping repeated charts.
        """
        from tensorboard.plugins.custom_scalar import metadata
        from tensorboard.util import tensor_util

        tensor = tensor_util.make_tensor_proto(layout.SerializeToString(), dtype=np.object_)
        self._summary(0, metadata.CONFIG_SUMMARY_TAG, metadata.create_summary_metadata(), tensor)

    def graph(self, graph_def) -> None:
        """The GRAPHS dashboard: a `tensorboard.compat.proto` GraphDef (as tf.summary.graph)."""
        self._write(event_pb2.Event(step=0, graph_def=graph_def.SerializeToString()))
        if self._auto_flush:
            self.flush()

    # Writing ---------------------------------------------------------------

    def _summary(self, step, tag, metadata, tensor) -> None:
        summary = summary_pb2.Summary()
        summary.value.add(tag=tag, metadata=metadata, tensor=tensor)
        self._write_summary(step, summary)

    def _write_summary(self, step: int, summary) -> None:
        self._write(event_pb2.Event(step=int(step), summary=summary))
        if self._auto_flush:
            self.flush()

    def _write(self, event) -> None:
        """Appends `event`, stamped with the time now, as one TFRecord frame."""
        if self._file is None:
            raise ValueError(f"the summary writer of {self.log_dir} is closed")
        event.wall_time = time.time()
        data = event.SerializeToString()
        length = _LENGTH.pack(len(data))
        self._io(self._file.write, length + _masked_crc(length) + data + _masked_crc(data))

    def _io(self, operation, *args) -> None:
        try:
            operation(*args)
        except OSError as e:
            raise UserError(
                f"cannot write summaries to {self.log_dir}: {failures.describe(e)}"
            ) from None


class Discard:
    """Stands in for a SummaryWriter where nothing is written (processes other
    than 0 of a multi-host run): every call does nothing."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def open_writer(log_dir: str, owner: bool = True):
    """A run's writer: a SummaryWriter whose events reach the disk at each
    `flush()` (the loop flushes at every log step), or, where this process
    does not own the files (`owner` False), a Discard."""
    return SummaryWriter(log_dir, auto_flush=False) if owner else Discard()


@functools.cache
def _metadata(plugin: str) -> summary_pb2.SummaryMetadata:
    """The SummaryMetadata that TensorBoard's `plugin` summaries carry (made once)."""
    if plugin == "scalars":
        from tensorboard.plugins.scalar import metadata
    else:
        from tensorboard.plugins.image import metadata
    return metadata.create_summary_metadata(display_name=None, description=None)


def _scalar_tensor(value: np.float32) -> tensor_pb2.TensorProto:
    """A float32 scalar, as `tf.summary.scalar` stores it."""
    return tensor_pb2.TensorProto(
        dtype=types_pb2.DT_FLOAT, tensor_shape=tensor_shape_pb2.TensorShapeProto(),
        float_val=[value],
    )  # fmt: skip


def _image_tensor(image, max_outputs: int) -> tensor_pb2.TensorProto:
    """[width, height, PNG, ...] as strings, as `tf.summary.image` stores
    pictures (Flax's shapes: one channel becomes three). Floats in [0, 1]
    become uint8 as TensorFlow's `convert_image_dtype` does (x * 255.5, truncated)."""
    from PIL import Image
    from tensorboard.util import tensor_util

    image = np.asarray(image)
    if image.ndim == 2:
        image = image[None, :, :, None]
    elif image.ndim == 3:  # [H, W, C] or [K, H, W]
        image = image[None] if image.shape[-1] in (1, 3) else image[..., None]
    if image.ndim != 4 or image.shape[-1] not in (1, 3):
        raise ValueError(f"an image is [H,W], [H,W,1 or 3] or a batch of them, got {image.shape}")
    if image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    if image.dtype != np.uint8:
        image = np.clip(np.asarray(image, np.float64) * 255.5, 0, 255).astype(np.uint8)
    pngs = []
    for picture in image[:max_outputs]:
        png = io.BytesIO()
        Image.fromarray(picture).save(png, format="PNG")
        pngs.append(png.getvalue())
    height, width = image.shape[1:3]
    return tensor_util.make_tensor_proto(
        [str(width).encode(), str(height).encode(), *pngs], dtype=np.object_
    )


def flatten(tree: Mapping, prefix: str = "") -> dict:
    """{'a': {'b': 1}} -> {'a.b': 1}; tuples and lists become strings (as Flax's hparams)."""
    flat = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, name + "."))
        elif isinstance(value, (bool, int, float, str)):
            flat[name] = value
        else:
            flat[name] = str(value)
    return flat


# --------------------------------------------------------------------------
# Event files of a run directory.


def event_files(log_dir: str) -> list[str]:
    return sorted(glob.glob(os.path.join(log_dir, "events.out.tfevents.*")))


def cut_events_after(log_dir: str, step: int) -> int:
    """Drops every event after `step` from the event files in `log_dir`.

    A run resumed from its checkpoint at `step` logs steps after it again;
    without this, TensorBoard would show the interrupted attempt's values
    beside the new ones. Returns the number of events dropped. A record cut
    short by a kill goes too. Kept records are copied as they are (with
    their checksums).
    """
    dropped = 0
    temporary = os.path.join(log_dir, ".cutting-events.tmp")  # not "tfevents": unseen
    for path in event_files(log_dir):
        with open(path, "rb") as f:
            data = f.read()
        records = list(_records(data))
        kept = [raw for raw, event in records if event_pb2.Event.FromString(event).step <= step]
        if len(kept) < len(records) or sum(len(raw) for raw, _ in records) < len(data):
            dropped += len(records) - len(kept)
            with open(temporary, "wb") as f:
                f.write(b"".join(kept))
            os.replace(temporary, path)  # atomic: old or new, never half
    return dropped


def _records(data: bytes):
    """(whole record, its Event's bytes) for each complete TFRecord in `data`."""
    offset = 0
    while offset + 12 <= len(data):
        (length,) = _LENGTH.unpack_from(data, offset)
        end = offset + 12 + length + 4
        if end > len(data):
            return
        yield data[offset:end], data[offset + 12 : end - 4]
        offset = end


# --------------------------------------------------------------------------
# What the dashboards show of a run beside its metrics.


def seed_bands(tags: list[str]):
    """A CUSTOM SCALARS layout: per tag, the seeds' mean with a mean -+ std
    band (a margin chart), and beside it their min and max.

    Every point's aggregate run has these tags, so each chart shows every
    point: the run selector picks which.
    """
    from tensorboard.plugins.custom_scalar import layout_pb2

    charts = []
    for tag in tags:
        band = layout_pb2.MarginChartContent.Series(
            value=f"{tag}/mean", lower=f"{tag}/lower", upper=f"{tag}/upper"
        )
        charts.append(
            layout_pb2.Chart(
                title=f"{tag}: mean -+ std over seeds",
                margin=layout_pb2.MarginChartContent(series=[band]),
            )
        )
        spread = layout_pb2.MultilineChartContent(tag=[rf"^{tag}/(min|max)$"])
        charts.append(layout_pb2.Chart(title=f"{tag}: min and max", multiline=spread))
    category = layout_pb2.Category(title="seed bands (aggregate runs)", chart=charts)
    return layout_pb2.Layout(category=[category])


def escape_markdown(text: str) -> str:
    """`text` shown as written in TEXT, which reads Markdown: `0.5*x1 + 0.5*x2`
    would lose its asterisks to italics."""
    return text.replace("\\", "\\\\").replace("*", "\\*").replace("_", "\\_")


def config_markdown(config: Mapping) -> str:
    """The resolved config as a markdown code block for the TEXT dashboard."""
    return "```\n" + json.dumps(config, indent=2, default=str) + "\n```"


def run_markdown() -> str:
    """How this run was made, for the TEXT dashboard: command, code, software."""
    import shlex
    import subprocess
    import sys

    import flax
    import jax

    here = os.path.dirname(os.path.abspath(__file__))

    def git(*args):
        try:
            result = subprocess.run(
                ["git", *args], cwd=here, capture_output=True, text=True, timeout=5
            )
            return result.stdout.strip() if result.returncode == 0 else ""
        except (OSError, subprocess.SubprocessError):
            return ""

    commit = git("rev-parse", "HEAD") or "(not a git checkout)"
    if git("status", "--porcelain", "--untracked-files=no"):
        commit += " with uncommitted changes"
    rows = [
        ("command", f"`{shlex.join([os.path.basename(sys.executable), *sys.argv])}`"),
        ("git commit", commit),
        ("JAX", jax.__version__),
        ("Flax", flax.__version__),
        ("devices", ", ".join(str(d) for d in jax.devices())),
    ]
    return "| | |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in rows)

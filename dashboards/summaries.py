"""TensorBoard summaries, written into event files by a process of their own.

`Writer` builds each `Event` proto itself with TensorBoard's NumPy helpers
(the same summaries `flax.metrics.tensorboard` and `tf.summary` write, with
no TensorFlow), stamps its wall time, and hands it to `event_writer`'s
process, which owns the event file. That process starts at the top of
`train.py` (or at `preload()`).
"""

import contextlib
import fcntl
import glob
import io
import json
import os
import struct
import sys
import time
from collections.abc import Mapping

import numpy as np

from dashboards import event_writer
from plumbing import failures
from plumbing.failures import UserError


def preload() -> None:
    """Starts the event-writer process (idempotent)."""
    event_writer.start_early()


def flatten(tree: Mapping, prefix: str = "") -> dict:
    """{'a': {'b': 1}} -> {'a.b': 1}; tuples and lists become strings."""
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
    from tensorboard.compat.proto import event_pb2

    dropped = 0
    temporary = os.path.join(log_dir, ".cutting-events.tmp")  # not "tfevents": unseen
    for path in event_files(log_dir):
        _wait_until_written(path)
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
    """(whole record, its Event's bytes) for each complete TFRecord in `data`.

    A record: uint64 length, uint32 checksum of it, the data, uint32 checksum
    of the data (little-endian).
    """
    offset = 0
    while offset + 12 <= len(data):
        (length,) = struct.unpack_from("<Q", data, offset)
        end = offset + 12 + length + 4
        if end > len(data):
            return
        yield data[offset:end], data[offset + 12 : end - 4]
        offset = end


def _wait_until_written(path: str, timeout: float = 60) -> None:
    """Waits while an event writer still appends to `path` (it holds a lock).

    A run killed while its event writer had events queued leaves that process
    writing them for a moment; its event file must be complete before it is
    cut back to a checkpoint.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise UserError(
                        f"{path} is still being written by another process after {timeout:.0f} s:"
                        " is this run still going? Wait for it, or pass --new_run"
                    ) from None
                time.sleep(0.05)
    finally:
        os.close(fd)  # releases the lock


class Writer:
    """Writes one run's summaries into `log_dir` (one event file per writer).

    Values arrive as host numbers or arrays; nothing here touches a device,
    and nothing waits for the event writer but `flush(wait=True)` and `close()`.
    Each event carries the wall time of the call that wrote it. A failed
    write (a full disk, a removed directory, an event-writer process that
    died) raises UserError at the next `flush` or `close`.
    """

    def __init__(self, log_dir: str):
        self._log_dir = log_dir
        with failures.reported(f"cannot write summaries to {log_dir}"):
            os.makedirs(log_dir, exist_ok=True)
            # Held open: if the directory is removed (and maybe made again by
            # a checkpoint), flush sees it and the event writer writes nothing.
            self._directory = os.open(log_dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            self._process = event_writer.start()
        except OSError as e:
            os.close(self._directory)
            raise UserError(f"cannot start the process that writes summaries: {e}") from None
        directory = os.fstat(self._directory)
        self._id = self._process.open(log_dir, (directory.st_dev, directory.st_ino))
        self._closed = False

    def _write(self, step: int, **fields) -> None:
        from tensorboard.compat.proto import event_pb2

        event = event_pb2.Event(wall_time=time.time(), step=step, **fields)
        self._process.write(self._id, event.SerializeToString())

    def _write_summaries(self, step: int, summaries) -> None:
        """One event holding every value of `summaries` (Summary protos), as
        `tf.summary.experimental.write_raw_pb` writes them."""
        from tensorboard.compat.proto import summary_pb2

        values = [value for summary in summaries for value in summary.value]
        if values:
            self._write(step, summary=summary_pb2.Summary(value=values))

    def hparams(self, config: Mapping) -> None:
        """The HPARAMS dashboard's row for this run: every config field."""
        from tensorboard.plugins.hparams.summary_v2 import hparams_pb

        self._write_summaries(0, [hparams_pb(flatten(config))])

    def text(self, tag: str, markdown: str, step: int = 0) -> None:
        from tensorboard.plugins.text.summary_v2 import text_pb

        self._write_summaries(step, [text_pb(tag, markdown)])

    def layout(self, layout) -> None:
        """The CUSTOM SCALARS dashboard's charts: a `layout_pb2.Layout`.

        TensorBoard merges the layouts of every run, dropping repeated charts.
        """
        self._write_summaries(0, [layout_pb(layout)])

    def graph(self, graph_def) -> None:
        """The GRAPHS dashboard: a `tensorboard.compat.proto` GraphDef."""
        self._write(0, graph_def=graph_def.SerializeToString())  # as tf.summary.graph

    def scalars(self, step: int, scalars: Mapping[str, float]) -> None:
        from tensorboard.plugins.scalar.summary_v2 import scalar_pb

        self._write_summaries(step, [scalar_pb(tag, float(v)) for tag, v in scalars.items()])

    def image(self, tag: str, image: np.ndarray, step: int) -> None:
        """IMAGES: one (height, width[, 1 or 3]) picture, uint8 or floats in [0, 1]."""
        self._write_summaries(step, [image_pb(tag, image)])

    def histograms(self, step: int, arrays: Mapping[str, np.ndarray]) -> None:
        """HISTOGRAMS and DISTRIBUTIONS: one per array, over its entries."""
        from tensorboard.plugins.histogram.summary_v2 import histogram_pb

        self._write_summaries(step, [histogram_pb(tag, np.asarray(v)) for tag, v in arrays.items()])

    def flush(self, wait: bool = False) -> None:
        """Asks for everything so far on disk; raises UserError if a write failed.

        Training goes on while the event-writer process writes, so a failure
        shows at a later flush, or at `close`. With `wait`, returns once
        everything so far has left this process: the event writer puts it on
        disk even if this process is killed next (what a checkpoint needs).
        """
        self._process.flush(self._id, wait)
        self._raise_if_failed()

    def close(self) -> None:
        """Writes and flushes everything, closes the event file, raises a failure.

        Waits for the event writer. Called while another error propagates
        (from a `finally`), it drops what this process prints meanwhile: that
        error is the one to report, not, say, the tracebacks a failed orbax
        write's leftover callbacks print from their threads.
        """
        if self._closed:
            self._raise_if_failed()
            return
        with failures.held_stderr(drop=True) if sys.exc_info()[1] else contextlib.nullcontext():
            self._process.close(self._id)
        try:
            self._raise_if_failed()
        finally:
            self._closed = True
            os.close(self._directory)

    def _raise_if_failed(self) -> None:
        if not self._closed and os.fstat(self._directory).st_nlink == 0:  # removed
            raise UserError(event_writer.disappeared(self._log_dir))
        error = self._process.error(self._id)
        if error:
            if not error.startswith("cannot write"):
                error = f"cannot write summaries to {self._log_dir}: {error}"
            raise UserError(error)
        path = self._process.event_file(self._id)
        if path and not os.path.exists(path):
            raise UserError(event_writer.disappeared(path))


def layout_pb(layout):
    """The Summary `tensorboard.plugins.custom_scalar.summary.pb` makes, built
    here without TensorFlow (which that function imports)."""
    from tensorboard.compat.proto import summary_pb2
    from tensorboard.plugins.custom_scalar import metadata
    from tensorboard.util import tensor_util

    tensor = tensor_util.make_tensor_proto(layout.SerializeToString(), dtype=np.object_)
    summary = summary_pb2.Summary()
    summary.value.add(
        tag=metadata.CONFIG_SUMMARY_TAG, metadata=metadata.create_summary_metadata(), tensor=tensor
    )
    return summary


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


def image_pb(tag: str, image: np.ndarray):
    """The Summary `tf.summary.image` writes for one picture: PNG-encoded.

    Its tensor holds [width, height, png] as strings, under the images
    plugin's metadata. Floats in [0, 1] become uint8 as TensorFlow's
    `convert_image_dtype` does (x * 255.5, truncated); one channel becomes
    three, as flax's writer does.
    """
    from PIL import Image
    from tensorboard.compat.proto import summary_pb2
    from tensorboard.plugins.image import metadata
    from tensorboard.util import tensor_util

    image = np.asarray(image)
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[-1] not in (1, 3):
        raise ValueError(f"an image is (height, width[, 1 or 3]), got shape {image.shape}")
    if image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    if image.dtype != np.uint8:
        image = np.clip(np.asarray(image, np.float64) * 255.5, 0, 255).astype(np.uint8)
    png = io.BytesIO()
    Image.fromarray(image).save(png, format="PNG")
    height, width = image.shape[:2]
    tensor = tensor_util.make_tensor_proto(
        [str(width).encode(), str(height).encode(), png.getvalue()], dtype=np.object_
    )
    summary = summary_pb2.Summary()
    summary.value.add(
        tag=tag,
        metadata=metadata.create_summary_metadata(display_name=None, description=None),
        tensor=tensor,
    )
    return summary


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

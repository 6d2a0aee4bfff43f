"""TensorBoard summaries through `flax.metrics.tensorboard`.

`flax.metrics.tensorboard` imports TensorFlow, which costs seconds and, left
alone, would take the GPU and fill the console with its logs. So:
- `preload()` starts that import on a background thread at start-up, where
  it overlaps with JAX's own import, model building and compilation;
- TensorFlow's C++ logging is silenced and its view of GPUs emptied before
  it can touch one, so the GPU stays with JAX.

`Writer` is the one object the training loop writes through.
"""

import glob
import json
import os
from collections.abc import Mapping

import numpy as np

import background
import io_errors
from registry import UserError

# Set before TensorFlow loads: its C++ logs stay off the console, and the
# oneDNN notice (TF's own ops are not used for numbers here) is never printed.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")


def _import_tensorboard():
    import tensorflow as tf
    from flax.metrics import tensorboard

    tf.config.set_visible_devices([], "GPU")  # the GPU is JAX's
    tf.get_logger().setLevel("ERROR")
    return tensorboard


def preload() -> None:
    """Starts importing TensorFlow in the background (idempotent)."""
    background.start(_import_tensorboard)


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
    beside the new ones. Returns the number of events dropped.
    """
    from tensorboard.backend.event_processing import event_file_loader
    from tensorboard.compat.proto import event_pb2
    from tensorboard.summary.writer.record_writer import RecordWriter

    dropped = 0
    temporary = os.path.join(log_dir, ".cutting-events.tmp")  # not "tfevents": unseen
    for path in event_files(log_dir):
        records = list(event_file_loader.RawEventFileLoader(path).Load())
        kept = [r for r in records if event_pb2.Event.FromString(r).step <= step]
        if len(kept) < len(records):
            dropped += len(records) - len(kept)
            with open(temporary, "wb") as f:
                writer = RecordWriter(f)
                for record in kept:
                    writer.write(record)
            os.replace(temporary, path)  # atomic: old or new, never half
    return dropped


class Writer:
    """Writes one run's summaries into `log_dir` (one event file per writer).

    Values arrive as host numbers or arrays; nothing here touches a device.
    `flush` makes everything written so far durable and raises UserError
    if it cannot be (TensorFlow's writer alone would lose events silently
    when the directory is removed under it).
    """

    def __init__(self, log_dir: str):
        tensorboard = background.start(_import_tensorboard).result()
        before = set(event_files(log_dir))
        self._log_dir = log_dir
        self._writer = tensorboard.SummaryWriter(log_dir, auto_flush=False)
        self._writer.flush()
        new = sorted(set(event_files(log_dir)) - before)
        self._file = new[-1] if new else None

    def _writing(self):
        # TensorFlow's writer flushes by itself when its buffer fills, so any
        # write can meet a full disk.
        return io_errors.reported(f"cannot write summaries to {self._log_dir}")

    def hparams(self, config: Mapping) -> None:
        """The HPARAMS dashboard's row for this run: every config field."""
        with self._writing():
            self._writer.hparams(flatten(config))

    def text(self, tag: str, markdown: str, step: int = 0) -> None:
        with self._writing():
            self._writer.text(tag, markdown, step)

    def graph(self, graph_def) -> None:
        """The GRAPHS dashboard: a `tensorboard.compat.proto` GraphDef."""
        import tensorflow as tf

        tf_graph_def = tf.compat.v1.GraphDef.FromString(graph_def.SerializeToString())
        # flax's writer has no graph method; write through its TF writer.
        with self._writing(), self._writer._event_writer.as_default():
            tf.summary.graph(tf_graph_def)

    def scalars(self, step: int, scalars: Mapping[str, float]) -> None:
        from tensorboard.plugins.scalar.summary_v2 import scalar_pb

        self._write_protos(step, [scalar_pb(tag, float(v)) for tag, v in scalars.items()])

    def image(self, tag: str, image: np.ndarray, step: int) -> None:
        """IMAGES: one (height, width, 3) uint8 picture."""
        with self._writing():
            self._writer.image(tag, image, step)

    def histograms(self, step: int, arrays: Mapping[str, np.ndarray]) -> None:
        """HISTOGRAMS and DISTRIBUTIONS: one per array, over its entries."""
        from tensorboard.plugins.histogram.summary_v2 import histogram_pb

        self._write_protos(step, [histogram_pb(tag, np.asarray(v)) for tag, v in arrays.items()])

    def _write_protos(self, step: int, protos) -> None:
        """Writes Summary protos made by TensorBoard's NumPy `*_pb` helpers.

        The same events as flax's `scalar` and `histogram` write, at a tenth
        of the cost: those run several TensorFlow eager ops per value (about
        0.4 ms per scalar, 6 ms per histogram); this is one op per call.
        """
        import tensorflow as tf

        if not protos:
            return
        data = tf.constant([p.SerializeToString() for p in protos])
        with self._writing(), self._writer._event_writer.as_default():
            tf.summary.experimental.write_raw_pb(data, step=step)

    def flush(self) -> None:
        with self._writing():
            self._writer.flush()
        if self._file and not os.path.exists(self._file):
            raise UserError(
                f"cannot write summaries: {self._file} disappeared (was the run directory removed?)"
            )

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._writer.close()


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

"""A run read back from its event files: its scalars, its pictures, its member runs.

What TensorBoard shows, as Python values, for notebooks and tests:

    reading.scalars("runs/xor/default", "train/loss")   # {step: value}
    reading.image("runs/xor/default", "views/decision_boundary/train")  # PNG bytes
"""

import io

import numpy as np
from tensorboard.backend.event_processing import plugin_event_accumulator
from tensorboard.util import tensor_util


def events(run_dir: str) -> plugin_event_accumulator.EventAccumulator:
    """Every summary of one run (the event files directly in `run_dir`), all steps kept."""
    accumulator = plugin_event_accumulator.EventAccumulator(
        str(run_dir), size_guidance={"tensors": 0}
    )
    accumulator.Reload()
    return accumulator


def scalars(run_dir: str, tag: str) -> dict[int, float]:
    """{step: value} of one scalar tag."""
    return {e.step: float(tensor_util.make_ndarray(e.tensor_proto))
            for e in events(run_dir).Tensors(tag)}  # fmt: skip


def image(run_dir: str, tag: str, step: int | None = None) -> bytes:
    """The PNG of the picture `tag` at `step` (the last one if None)."""
    accumulator = events(run_dir)
    if tag not in accumulator.Tags()["tensors"]:
        raise KeyError(f"{run_dir} has no {tag!r}; it has {sorted(accumulator.Tags()['tensors'])}")
    logged = accumulator.Tensors(tag)
    event = logged[-1] if step is None else next(e for e in logged if e.step == step)
    return tensor_util.make_ndarray(event.tensor_proto)[2]


def pixels(run_dir: str, tag: str, step: int | None = None) -> np.ndarray:
    """The picture `tag` as an (height, width, 3) uint8 array."""
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(image(run_dir, tag, step))).convert("RGB"))

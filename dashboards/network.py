"""The TensorFlow Playground's network view, drawn with NumPy and Pillow.

Columns from left to right: the input features, each hidden layer, then
the output picture (a decision boundary, drawn elsewhere). Every unit is a
small heatmap of its value over the plane: orange where negative, blue
where positive, white at 0, full colour at the unit's own largest |value|.
Lines join the units of consecutive columns: blue for a positive weight,
orange for a negative one, thicker for a bigger |weight|.

Nothing here runs a model: the caller evaluates features, activations
and kernels (as NumPy arrays) and `network` only draws them.
"""

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from dashboards.pictures import BLUE, ORANGE, WHITE, _font

MAX_UNITS = 8  # units (and inputs) drawn per column at most
GREY = (160, 160, 160)  # panel borders
HEADER = 28  # rows above the tallest column, for the column headers
FOOTER = 20  # rows below it, for the input names
GAP = 18  # rows between the panels of one column (an input's name fits)


class Layout(NamedTuple):
    """Where `network` puts everything, in pixels.

    units: one tuple per column (inputs, hidden layer 1, ..., hidden layer L)
      of the (row, col) top-left corner of each drawn unit's panel, which is
      `panel` x `panel`: `image[row:row + panel, col:col + panel]`.
    output: (top, left, bottom, right) of the output picture, bottom and
      right exclusive: `image[top:bottom, left:right]`.
    shape: (height, width) of the image.
    panel: the side of a unit's panel.
    """

    units: tuple[tuple[tuple[int, int], ...], ...]
    output: tuple[int, int, int, int]
    shape: tuple[int, int]
    panel: int


def layout(
    num_inputs: int, layer_sizes: Sequence[int], max_units: int = MAX_UNITS, panel: int = 48
) -> Layout:
    """The layout of `network` for these many inputs and hidden units per layer.

    At most `max_units` units of a column are drawn (the first ones). Each
    column is centred vertically; the output panel is 3 * panel a side.
    """
    counts = [min(n, max_units) for n in (num_inputs, *layer_sizes)]
    pitch = panel + max(2 * panel, 110)  # a column and the lines after it
    margin = (pitch - panel) // 2  # so a header as wide as `pitch` fits
    big = 3 * panel
    heights = [n * panel + max(n - 1, 0) * GAP for n in counts]
    body = max([*heights, big])
    units = tuple(
        tuple(
            (HEADER + (body - height) // 2 + k * (panel + GAP), i * pitch + margin)
            for k in range(n)
        )
        for i, (n, height) in enumerate(zip(counts, heights, strict=True))
    )
    top, left = HEADER + (body - big) // 2, len(counts) * pitch + margin
    return Layout(
        units,
        (top, left, top + big, left + big),
        (HEADER + body + FOOTER, left + big + margin),
        panel,
    )


def network(
    inputs: Sequence[np.ndarray],
    input_names: Sequence[str],
    hidden: Sequence[Sequence[np.ndarray]],
    weights: Sequence[np.ndarray],
    output: np.ndarray,
    max_units: int = MAX_UNITS,
    panel: int = 48,
    sizes: Sequence[int] | None = None,
) -> np.ndarray:
    """The Playground picture of a small network.

    Args:
      inputs: each (R, R), an input feature over the plane (row 0 = top).
      input_names: their names, written under their panels.
      hidden: hidden[l][u] is the (R, R) activation of unit u of layer l.
      weights: weights[l] is the (fan_in, fan_out) kernel from column l to
        column l + 1 (l = 0: from the inputs); len(hidden) + 1 of them.
        The last kernel's lines go to the output panel: with one output
        its column; with k >= 2 logits, w[:, -1] - mean(w[:, :-1]), the
        push towards the last class over the others (for 2 logits that is
        w[:, 1] - w[:, 0], what moves P(class 1)).
      output: (H, W, 3) uint8, the output picture, scaled to 3 * panel.
      max_units: at most this many units (and inputs) drawn per column.
      panel: the side of each unit's panel, in pixels.
      sizes: how many units each column (inputs first) really has, when
        `inputs` and `hidden` hold only the first `max_units` of a wider
        one; by default their lengths.

    Returns:
      (height, width, 3) uint8, of `layout(...).shape`.
    """
    from PIL import Image, ImageDraw

    if len(weights) != len(hidden) + 1:
        raise ValueError(f"{len(hidden)} hidden layers need {len(hidden) + 1} kernels")
    columns = [list(inputs), *(list(layer) for layer in hidden)]
    sizes = list(sizes) if sizes is not None else [len(column) for column in columns]
    place = layout(sizes[0], sizes[1:], max_units, panel)
    kernels = [np.asarray(w, np.float32) for w in weights]
    kernels[-1] = _towards_output(kernels[-1])[:, None]
    largest = max((float(np.max(np.abs(k))) for k in kernels if k.size), default=0.0)
    top, left, bottom, right = place.output
    image = Image.new("RGB", place.shape[::-1], "white")
    draw = ImageDraw.Draw(image)
    half = panel // 2

    # Lines first, thin ones under thick ones, then the panels over their ends.
    lines = []
    for i, kernel in enumerate(kernels):
        if i + 1 < len(place.units):  # the next column's left edges, middle rows
            ends = [(r + half, c - 1) for r, c in place.units[i + 1]]
        else:
            ends = [((top + bottom) // 2, left - 1)]
        for a, (r0, c0) in enumerate(place.units[i]):
            for b, (r1, c1) in enumerate(ends):
                w = float(kernel[a, b])
                if largest > 0 and abs(w) >= 0.01 * largest:
                    lines.append((abs(w), (c0 + panel, r0 + half, c1, r1), w > 0))
    for size, xy, positive in sorted(lines, key=lambda line: line[0]):
        color = _rgb(BLUE if positive else ORANGE)
        draw.line(xy, fill=color, width=1 + round(5 * size / largest))

    font, small = _font(11), _font(10)
    for i, column in enumerate(columns):
        for (r, c), values in zip(place.units[i], column, strict=False):
            image.paste(_heatmap(values, panel), (c, r))
            draw.rectangle((c - 1, r - 1, c + panel, r + panel), outline=GREY)
        if place.units[i]:
            x = place.units[i][0][1] + panel / 2
            draw.text((x, 6), _header(i, sizes[i], max_units), fill="black", font=font, anchor="ma")
    for (r, c), name in zip(place.units[0], input_names, strict=False):
        draw.text((c + panel / 2, r + panel + 3), str(name), fill="black", font=small, anchor="ma")

    picture = Image.fromarray(np.asarray(output, np.uint8)).convert("RGB")
    image.paste(picture.resize((right - left, bottom - top), Image.BILINEAR), (left, top))
    draw.rectangle((left - 1, top - 1, right, bottom), outline=GREY)
    draw.text(((left + right) / 2, 6), "output", fill="black", font=font, anchor="ma")
    return np.asarray(image)


def _towards_output(kernel: np.ndarray) -> np.ndarray:
    """One weight per unit of the last column: see `network`'s `weights`."""
    if kernel.shape[1] == 1:
        return kernel[:, 0]
    return kernel[:, -1] - kernel[:, :-1].mean(axis=1)


def _heatmap(values: np.ndarray, panel: int):
    """A `panel`-sided PIL image of one unit: orange < 0 < blue, white at 0."""
    from PIL import Image

    v = np.nan_to_num(np.asarray(values, np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    scale = float(np.max(np.abs(v))) if v.size else 0.0
    strength = (v / scale if scale > 0 else np.zeros_like(v))[..., None]
    rgb = WHITE + (np.where(strength >= 0, BLUE, ORANGE) - WHITE) * np.abs(strength)
    picture = Image.fromarray(np.round(rgb).astype(np.uint8))
    return picture.resize((panel, panel), Image.BILINEAR)


def _header(column: int, total: int, max_units: int) -> str:
    """'inputs', 'layer 1 (4 units)', or 'layer 1: first 8 of 16'."""
    name = "inputs" if column == 0 else f"layer {column}"
    if total > max_units:
        return f"{name}: first {max_units} of {total}"
    if column == 0:
        return name
    return f"{name} ({total} unit{'' if total == 1 else 's'})"


def _rgb(color: np.ndarray) -> tuple[int, int, int]:
    return tuple(int(c) for c in color)

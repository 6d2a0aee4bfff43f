"""The TensorFlow Playground's network view, drawn with NumPy and Pillow.

Columns from left to right: the input features, each hidden layer, then
the output picture (a decision boundary, drawn elsewhere). Every unit is a
small heatmap of its value over the plane: orange where negative, blue
where positive, white at 0, full colour at the unit's own largest |value|.
Lines join the units of consecutive columns: blue for a positive weight,
orange for a negative one, thicker for a bigger |weight|.

The picture is sized for a TensorBoard card (pictures.CARD), its text
pictures.FONT px: at most MAX_UNITS units a column, and at most BAND hidden
layers a picture. A deeper network is drawn as several pictures, one per
band of layers (`bands`), each starting from the column before its first
layer, the last one ending at the output.

Nothing here runs a model: the caller evaluates features, activations
and kernels (as NumPy arrays) and `network` only draws them.
"""

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from dashboards.pictures import BLUE, FONT, ORANGE, WHITE, font

MAX_UNITS = 6  # units (and inputs) drawn per column at most
BAND = 3  # hidden layers per picture at most
SIZE = (224, 336)  # (height, width) the layout fills at most, as pictures.chart
GREY = (160, 160, 160)  # panel borders
HEADER = FONT + 7  # rows above the columns, for their names
FOOTER = FONT + 5  # rows below them, for each layer's unit count
NAMES = 46  # columns left of the inputs, for their names ('sin(x1)')
GAP = 6  # rows between the panels of one column
PANEL = (16, 40)  # a unit's panel: its smallest and largest side
OUTPUT = (100, 130)  # the output picture's smallest and largest side
WIRES = (24, 72)  # columns between two columns of panels, for their lines


class Layout(NamedTuple):
    """Where `network` puts everything, in pixels.

    units: one tuple per drawn column (the inputs, or the band's first
      layer, then its layers) of the (row, col) top-left corner of each
      drawn unit's panel, which is `panel` x `panel`:
      `image[row:row + panel, col:col + panel]`.
    output: (top, left, bottom, right) of the output picture, bottom and
      right exclusive: `image[top:bottom, left:right]`; None in a band
      that does not reach the output.
    shape: (height, width) of the image.
    panel: the side of a unit's panel.
    """

    units: tuple[tuple[tuple[int, int], ...], ...]
    output: tuple[int, int, int, int] | None
    shape: tuple[int, int]
    panel: int


def bands(num_hidden: int, band: int = BAND) -> list[tuple[int, int]]:
    """The pictures of a network with `num_hidden` hidden layers, as (first,
    last) columns (0 = the inputs, l = hidden layer l): one picture up to
    `band` layers, else (0, 3), (3, 6), ... each band repeating the column
    before its layers."""
    starts = range(0, max(num_hidden, 1), band)
    return [(a, min(a + band, num_hidden)) for a in starts]


def layout(
    num_inputs: int,
    layer_sizes: Sequence[int],
    max_units: int = MAX_UNITS,
    panel: int | None = None,
    columns: tuple[int, int] | None = None,
) -> Layout:
    """The layout of `network` for these many inputs and hidden units per layer.

    At most `max_units` units of a column are drawn (the first ones), each
    column centred vertically. `panel`: a unit's side; by default the
    largest that fits SIZE's height. `columns`: (first, last) of `bands`;
    by default all of them. The output is drawn when `last` is the last
    hidden layer.
    """
    first, last = columns if columns is not None else (0, len(layer_sizes))
    counts = [min(n, max_units) for n in (num_inputs, *layer_sizes)][first : last + 1]
    tallest = max(counts)
    body = SIZE[0] - HEADER - FOOTER
    if panel is None:
        panel = int(np.clip((body - (tallest - 1) * GAP) // tallest, *PANEL))
    heights = [n * panel + max(n - 1, 0) * GAP for n in counts]
    with_output = last == len(layer_sizes)
    side = int(np.clip(max(heights), *OUTPUT)) if with_output else 0
    body = max(*heights, side)
    margin = NAMES if first == 0 else 8
    spans = len(counts) - (0 if with_output else 1)  # the gaps the lines cross
    free = SIZE[1] - margin - len(counts) * panel - side - 8
    wires = int(np.clip(free // max(spans, 1), *WIRES))
    pitch = panel + wires
    units = tuple(
        tuple(
            (HEADER + (body - height) // 2 + k * (panel + GAP), margin + i * pitch)
            for k in range(n)
        )
        for i, (n, height) in enumerate(zip(counts, heights, strict=True))
    )
    right = margin + len(counts) * pitch - (0 if with_output else wires)
    output = None
    if with_output:
        top = HEADER + (body - side) // 2
        output = (top, right, top + side, right + side)
    return Layout(units, output, (HEADER + body + FOOTER, right + side + 8), panel)


def network(
    inputs: Sequence[np.ndarray],
    input_names: Sequence[str],
    hidden: Sequence[Sequence[np.ndarray]],
    weights: Sequence[np.ndarray],
    output: np.ndarray,
    max_units: int = MAX_UNITS,
    panel: int | None = None,
    sizes: Sequence[int] | None = None,
    columns: tuple[int, int] | None = None,
) -> np.ndarray:
    """The Playground picture of a small network, or of one band of a deep one.

    Args:
      inputs: each (R, R), an input feature over the plane (row 0 = top).
      input_names: their names, written left of their panels.
      hidden: hidden[l][u] is the (R, R) activation of unit u of layer l + 1.
      weights: weights[l] is the (fan_in, fan_out) kernel from column l to
        column l + 1 (l = 0: from the inputs); len(hidden) + 1 of them.
        The last kernel's lines go to the output panel: with one output
        its column; with k >= 2 logits, w[:, -1] - mean(w[:, :-1]), the
        push towards the last class over the others (for 2 logits that is
        w[:, 1] - w[:, 0], what moves P(class 1)).
      output: (H, W, 3) uint8, the output picture, scaled to its box.
      max_units: at most this many units (and inputs) drawn per column.
      panel: the side of each unit's panel, in pixels (default: `layout`'s).
      sizes: how many units each column (inputs first) really has, when
        `inputs` and `hidden` hold only the first `max_units` of a wider
        one; by default their lengths.
      columns: (first, last), one of `bands(len(hidden))`; default: all.

    Returns:
      (height, width, 3) uint8, of `layout(...).shape`.
    """
    from PIL import Image, ImageDraw

    if len(weights) != len(hidden) + 1:
        raise ValueError(f"{len(hidden)} hidden layers need {len(hidden) + 1} kernels")
    first, last = columns if columns is not None else (0, len(hidden))
    every = [list(inputs), *(list(layer) for layer in hidden)]
    sizes = list(sizes) if sizes is not None else [len(column) for column in every]
    place = layout(sizes[0], sizes[1:], max_units, panel, (first, last))
    panel = place.panel
    kernels = [np.asarray(w, np.float32) for w in weights]
    kernels[-1] = _towards_output(kernels[-1])[:, None]
    kernels = kernels[first : last + 1] if place.output else kernels[first:last]
    largest = max((float(np.max(np.abs(k))) for k in kernels if k.size), default=0.0)
    image = Image.new("RGB", place.shape[::-1], "white")
    draw = ImageDraw.Draw(image)
    half = panel // 2

    # Lines first, thin ones under thick ones, then the panels over their ends.
    lines = []
    for i, kernel in enumerate(kernels):
        if i + 1 < len(place.units):  # the next column's left edges, middle rows
            ends = [(r + half, c - 1) for r, c in place.units[i + 1]]
        else:
            top, left, bottom, _ = place.output
            ends = [((top + bottom) // 2, left - 1)]
        for a, (r0, c0) in enumerate(place.units[i]):
            for b, (r1, c1) in enumerate(ends):
                w = float(kernel[a, b])
                if largest > 0 and abs(w) >= 0.01 * largest:
                    lines.append((abs(w), (c0 + panel, r0 + half, c1, r1), w > 0))
    for size, xy, positive in sorted(lines, key=lambda line: line[0]):
        color = _rgb(BLUE if positive else ORANGE)
        draw.line(xy, fill=color, width=1 + round(3 * size / largest))

    typeface = font()
    bottom_row = place.shape[0] - FOOTER + 3
    for i, column in enumerate(every[first : last + 1]):
        number = first + i
        for (r, c), values in zip(place.units[i], column, strict=False):
            image.paste(_heatmap(values, panel), (c, r))
            draw.rectangle((c - 1, r - 1, c + panel, r + panel), outline=GREY)
        x = place.units[i][0][1] + panel / 2
        name = "inputs" if number == 0 else f"layer {number}"
        draw.text((x, 4), name, fill="black", font=typeface, anchor="ma")
        count = _count(sizes[number], max_units, number == 0)
        draw.text((x, bottom_row), count, fill=(90, 90, 90), font=typeface, anchor="ma")
    if first == 0:
        for (r, c), name in zip(place.units[0], input_names, strict=False):
            draw.text((c - 4, r + half), str(name), fill="black", font=typeface, anchor="rm")
    if place.output:
        top, left, bottom, right = place.output
        picture = Image.fromarray(np.asarray(output, np.uint8)).convert("RGB")
        image.paste(picture.resize((right - left, bottom - top), Image.BILINEAR), (left, top))
        draw.rectangle((left - 1, top - 1, right, bottom), outline=GREY)
        draw.text(((left + right) / 2, 4), "output", fill="black", font=typeface, anchor="ma")
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


def _count(total: int, max_units: int, inputs: bool) -> str:
    """Under a column: '4 units', '2 inputs', or '6 of 16' when not all are drawn."""
    if total > max_units:
        return f"{max_units} of {total}"
    return f"{total} {'input' if inputs else 'unit'}{'' if total == 1 else 's'}"


def _rgb(color: np.ndarray) -> tuple[int, int, int]:
    return tuple(int(c) for c in color)

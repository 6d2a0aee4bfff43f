"""Pictures for TensorBoard's IMAGES dashboard, drawn with NumPy alone.

Images are (height, width, 3) uint8 arrays. Drawing with NumPy keeps the
cost to about a millisecond per picture and needs no plotting library:
these are made at log steps, between compiled training chunks, so they
must be cheap.

- `decision_boundary`: a classifier's output over a square, coloured as in
  the TensorFlow Playground (orange = class 0, blue = class 1, a colour
  each for more classes, paler where the model is unsure), the boundaries
  in black, the data points on top (outlined in grey).
- `curves`: functions of one variable on a grid with axes, e.g. an
  activation and its derivative.
- `chart`: labelled line charts with bands, e.g. sharpness against its
  limit over training, or a sweep's final loss against the swept value.

Pictures with text are drawn for TensorBoard's image card: the card fits a
picture into a box about CARD pixels (height, width) at its default size,
scaling it up or down without smoothing. Drawn near that size, their FONT-px
text shows at about the size of TensorBoard's own 13 px labels
(`shown_scale` says by how much a picture is scaled).
"""

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

ORANGE = np.array([245, 147, 34], np.float32)  # class 0
BLUE = np.array([8, 119, 189], np.float32)  # class 1
WHITE = np.array([255, 255, 255], np.float32)
BLACK = np.array([0, 0, 0], np.float32)
OUTLINE = np.array([60, 60, 60], np.float32)
GRID = np.array([225, 225, 225], np.float32)
GRID_INK = (190, 190, 190)  # a legend's border
CARD = (210, 320)  # (height, width) of the box an image card shows a picture in
FONT = 13  # text size in pixels, as drawn
COLORS = [BLUE, ORANGE, np.array([44, 160, 44]), np.array([214, 39, 40])]  # curves
# One colour per class (data.MAX_CLASSES of them): the Playground's two, then
# matplotlib's "tab10" for the rest.
CLASS_COLORS = np.array(
    [ORANGE, BLUE, [44, 160, 44], [214, 39, 40], [148, 103, 189],
     [140, 86, 75], [227, 119, 194], [127, 127, 127], [188, 189, 34], [23, 190, 207]],
    np.float32,
)  # fmt: skip


def grid_points(resolution: int, lo: float, hi: float) -> np.ndarray:
    """(resolution**2, 2) float32 points of a square, in image order.

    Row 0 is the top (largest x2), column 0 the left (smallest x1), so
    `model(points).reshape(resolution, resolution)` is an image.
    """
    ticks = np.linspace(lo, hi, resolution, dtype=np.float32)
    x1, x2 = np.meshgrid(ticks, ticks[::-1])
    return np.stack([x1.ravel(), x2.ravel()], axis=1)


def _pixels(values: np.ndarray, lo: float, hi: float, size: int) -> np.ndarray:
    return np.round((values - lo) / (hi - lo) * (size - 1)).astype(int)


def _stamp(image: np.ndarray, rows, cols, color, radius: int) -> None:
    """Paints a (2 radius + 1)^2 square at each (row, col) inside the image."""
    h, w, _ = image.shape
    for dr in range(-radius, radius + 1):
        for dc in range(-radius, radius + 1):
            r, c = rows + dr, cols + dc
            inside = (r >= 0) & (r < h) & (c >= 0) & (c < w)
            image[r[inside], c[inside]] = color


def _disc_offsets(radius: int) -> list[tuple[int, int]]:
    span = range(-radius, radius + 1)
    return [(dr, dc) for dr in span for dc in span if dr * dr + dc * dc <= radius * radius]


def decision_boundary(
    probabilities: np.ndarray,
    points: np.ndarray,
    labels: np.ndarray,
    lo: float,
    hi: float,
) -> np.ndarray:
    """The Playground picture of a classifier.

    Args:
      probabilities: (R, R) P(class 1) of a binary classifier, or (R, R, K)
        every class's probability, over `grid_points(R, lo, hi)`.
      points: (n, 2) data points, drawn as discs in their class colour.
      labels: (n,) their classes.
      lo, hi: the square [lo, hi]^2 the grid covers.

    Each pixel takes the colour of the predicted class (CLASS_COLORS: class
    0 orange, class 1 blue, as in the Playground), paler where the model is
    unsure; the boundaries between classes are black.

    Returns:
      (R, R, 3) uint8.
    """
    p = np.clip(np.asarray(probabilities, np.float32), 0, 1)
    if p.ndim == 2:  # binary: P(class 1)
        predicted = (p >= 0.5).astype(int)
        confident = np.abs(p - 0.5) * 2  # 0 on the boundary, 1 when sure
    else:
        k = p.shape[-1]
        predicted = np.argmax(p, axis=-1)
        confident = (np.max(p, axis=-1) - 1 / k) / (1 - 1 / k)
    color = CLASS_COLORS[predicted]
    image = WHITE + (color - WHITE) * (0.15 + 0.45 * confident[..., None])
    # The boundaries: where the predicted class differs from a neighbour's.
    edge = np.zeros(predicted.shape, bool)
    edge[:-1] |= predicted[:-1] != predicted[1:]
    edge[:, :-1] |= predicted[:, :-1] != predicted[:, 1:]
    image[edge] = BLACK
    size = p.shape[0]
    rows = (size - 1) - _pixels(points[:, 1], lo, hi, size)
    cols = _pixels(points[:, 0], lo, hi, size)
    # A few points (the four corners of a gate) are drawn large.
    radius = max(2, size // 60) if len(points) > 20 else max(4, size // 25)
    for cls in np.unique(labels):
        mine = np.asarray(labels) == cls
        for dr, dc in _disc_offsets(radius + 1):
            _put(image, rows[mine] + dr, cols[mine] + dc, OUTLINE)
        for dr, dc in _disc_offsets(radius):
            _put(image, rows[mine] + dr, cols[mine] + dc, CLASS_COLORS[int(cls)])
    return image.astype(np.uint8)


def _put(image, rows, cols, color) -> None:
    h, w, _ = image.shape
    inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
    image[rows[inside], cols[inside]] = color


def curves(
    x: np.ndarray,
    ys: Sequence[np.ndarray],
    y_range: tuple[float, float] | None = None,
    size: tuple[int, int] = (160, 240),
) -> np.ndarray:
    """Plots each y in `ys` against `x` on one set of axes.

    Light grid lines at every integer, black axes through 0; curves in
    blue, orange, green, red, in the order given.

    Args:
      x: (m,) increasing sample points.
      ys: curves, each (m,).
      y_range: (low, high) of the vertical axis; by default the data's,
        padded by 10%.
      size: (height, width) in pixels.

    Returns:
      (height, width, 3) uint8.
    """
    h, w = size
    x = np.asarray(x, np.float64)
    ys = [np.asarray(y, np.float64) for y in ys]
    if y_range is None:
        low = min(float(np.min(y)) for y in ys)
        high = max(float(np.max(y)) for y in ys)
        pad = 0.1 * max(high - low, 1e-6)
        y_range = (low - pad, high + pad)
    x0, x1 = float(x[0]), float(x[-1])
    y0, y1 = y_range
    image = np.empty((h, w, 3), np.float32)
    image[:] = WHITE
    for tick in range(int(np.ceil(x0)), int(np.floor(x1)) + 1):
        image[:, _pixels(np.array(tick), x0, x1, w)] = BLACK if tick == 0 else GRID
    for tick in range(int(np.ceil(y0)), int(np.floor(y1)) + 1):
        image[(h - 1) - _pixels(np.array(tick), y0, y1, h)] = BLACK if tick == 0 else GRID
    for i, y in enumerate(ys):
        cols = _pixels(x, x0, x1, w)
        rows = (h - 1) - _pixels(np.clip(y, y0, y1), y0, y1, h)
        rows, cols = _polyline(rows, cols)
        _stamp(image, rows, cols, COLORS[i % len(COLORS)], radius=1)
    return image.astype(np.uint8)


def _polyline(rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every pixel on the segments joining consecutive points (no gaps)."""
    lengths = np.maximum(np.abs(np.diff(rows)), np.abs(np.diff(cols))) + 1
    segment = np.repeat(np.arange(len(lengths)), lengths)
    t = (np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)) / (
        np.repeat(lengths, lengths)
    )
    r = rows[segment] + t * (rows[segment + 1] - rows[segment])
    c = cols[segment] + t * (cols[segment + 1] - cols[segment])
    return np.round(r).astype(int), np.round(c).astype(int)


def font(size: int = FONT):
    """Pillow's bundled font at `size` px: no files, no network."""
    from PIL import ImageFont

    return ImageFont.load_default(size)


def shown_scale(shape: tuple[int, ...]) -> float:
    """How much TensorBoard's image card scales a picture of `shape`
    (height, width, ...) to fit it in CARD: text of FONT px shows at
    FONT * shown_scale(shape) px."""
    return min(CARD[0] / shape[0], CARD[1] / shape[1])


def confusion_matrix(confusion: np.ndarray, class_names: Sequence[str], cell: int = 44):
    """A confusion matrix: row = true class, column = predicted, with counts.

    Each cell is shaded by the fraction of its row (its true class): the
    diagonal is what was right, the rest where the mistakes went.

    Returns (height, width, 3) uint8.
    """
    from PIL import Image, ImageDraw

    confusion = np.asarray(confusion)
    k = len(confusion)
    rows = confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)
    margin = 90
    image = Image.new("RGB", (margin + k * cell, margin + k * cell), "white")
    draw = ImageDraw.Draw(image)
    typeface = font(11)
    for i in range(k):
        for j in range(k):
            shade = WHITE + (BLUE - WHITE) * rows[i, j]
            box = (margin + j * cell, margin + i * cell, margin + (j + 1) * cell - 1)
            draw.rectangle(
                (*box[:2], box[2], margin + (i + 1) * cell - 1), fill=tuple(int(c) for c in shade)
            )
            ink = "white" if rows[i, j] > 0.5 else "black"
            draw.text(
                (box[0] + cell / 2, box[1] + cell / 2),
                str(confusion[i, j]),
                fill=ink,
                font=typeface,
                anchor="mm",
            )
        name = str(class_names[i])[:12]
        draw.text(
            (margin - 4, margin + i * cell + cell / 2),
            name,
            fill="black",
            font=typeface,
            anchor="rm",
        )
        label = Image.new("RGB", (margin - 4, cell), "white")  # column names, rotated
        ImageDraw.Draw(label).text(
            (margin - 6, cell / 2), name, fill="black", font=typeface, anchor="rm"
        )
        image.paste(label.rotate(90, expand=True), (margin + i * cell, 0))
    draw.text((4, 4), "rows: true class\ncolumns: predicted", fill="black", font=typeface)
    return np.asarray(image)


def captioned_grid(images: np.ndarray, captions: Sequence[str], columns: int = 8, scale: int = 3):
    """Small images in a grid, each enlarged `scale` times with a caption below.

    Args:
      images: (n, h, w) or (n, h, w, c) uint8.
      captions: one short line per image (e.g. 'Shirt -> T-shirt/top').

    Returns (height, width, 3) uint8.
    """
    from PIL import Image, ImageDraw

    images = np.asarray(images)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    n, h, w = images.shape[:3]
    tile_w, tile_h = max(w * scale, 110), h * scale + 28
    rows = -(-n // columns)
    sheet = Image.new("RGB", (columns * tile_w, rows * tile_h), "white")
    draw = ImageDraw.Draw(sheet)
    typeface = font(10)
    for i in range(n):
        r, c = divmod(i, columns)
        picture = Image.fromarray(images[i]).resize((w * scale, h * scale), Image.NEAREST)
        x0 = c * tile_w + (tile_w - w * scale) // 2
        sheet.paste(picture.convert("RGB"), (x0, r * tile_h))
        true, _, predicted = captions[i].partition("->")
        draw.text(
            (c * tile_w + tile_w / 2, r * tile_h + h * scale + 2),
            true.strip(),
            fill="black",
            font=typeface,
            anchor="ma",
        )
        draw.text(
            (c * tile_w + tile_w / 2, r * tile_h + h * scale + 14),
            "as " + predicted.strip(),
            fill=(214, 39, 40),
            font=typeface,
            anchor="ma",
        )
    return np.asarray(sheet)


class Series(NamedTuple):
    """One line of a `chart`, with an optional shaded band around it."""

    y: np.ndarray  # (m,), NaN where there is no value
    label: str
    low: np.ndarray | None = None  # the band, (m,) each
    high: np.ndarray | None = None
    dashed: bool = False
    color: int | None = None  # an index into the chart's colours; None: its place
    x: np.ndarray | None = None  # (m,) its own x values; None: the chart's
    dots: bool = False  # a dot per value, no line (data points)


def ticks(lo: float, hi: float, log: bool = False, count: int = 5) -> list[float]:
    """Round values to label an axis from `lo` to `hi` (powers of ten on a log one)."""
    if log:
        first, last = int(np.floor(np.log10(lo))), int(np.ceil(np.log10(hi)))
        return [10.0**e for e in range(first, last + 1) if lo <= 10.0**e * (1 + 1e-9) and
                10.0**e <= hi * (1 + 1e-9)]  # fmt: skip
    span = max(hi - lo, 1e-12)
    raw = span / count
    step = 10 ** np.floor(np.log10(raw))
    step *= next(m for m in (1, 2, 2.5, 5, 10) if m * step >= raw)
    start = np.ceil(lo / step - 1e-9) * step
    return [round(float(t), 12) + 0.0 for t in np.arange(start, hi + step * 1e-6, step)]


def _number(value: float) -> str:
    return f"{value:.4g}".replace("-0", "0") if value == 0 else f"{value:.4g}"


def _dashed(draw, points: list, color, on: float = 7, off: float = 5) -> None:
    """A polyline drawn `on` pixels on, `off` pixels off, along its length."""
    phase = 0.0  # where along the pattern the segment starts
    for (xa, ya), (xb, yb) in zip(points, points[1:], strict=False):
        length = float(np.hypot(xb - xa, yb - ya))
        t = 0.0
        while t < length:
            into = phase % (on + off)
            piece = (on - into) if into < on else (on + off - into)
            end = min(t + piece, length)
            if into < on:
                a, b = t / length, end / length
                start = (xa + a * (xb - xa), ya + a * (yb - ya))
                draw.line([start, (xa + b * (xb - xa), ya + b * (yb - ya))], fill=color, width=2)
            phase += end - t
            t = end


def _wrap(draw, text: str, typeface, width: float) -> list[str]:
    """`text` broken at spaces into lines no wider than `width` pixels."""
    lines = []
    for word in text.split():
        if lines and draw.textlength(f"{lines[-1]} {word}", font=typeface) <= width:
            lines[-1] += f" {word}"
        else:
            lines.append(word)
    return lines


def chart(
    x: np.ndarray,
    series: Sequence[Series],
    title: str = "",
    x_label: str = "",
    log_x: bool = False,
    mark: tuple[float, float] | None = None,
    log_y: bool = False,
    size: tuple[int, int] = (224, 336),
    y_label: str = "",
) -> np.ndarray:
    """A line chart sized for a TensorBoard card (CARD), text FONT px.

    Each series a colour, its band shaded; the title wrapped to the width;
    both axes labelled; a legend naming every labelled series, in the
    corner of the plot its lines cross least; `mark` (x, y) circled (the
    best value of a sweep); zero drawn darker when inside the range.
    `log_x`, `log_y`: logarithmic axes (for positive values).

    Returns (height, width, 3) uint8.
    """
    from PIL import Image, ImageDraw

    h, w = size
    image = Image.new("RGB", (w, h), "white")
    draw = ImageDraw.Draw(image)
    typeface, line_height = font(), FONT + 3
    title_lines = _wrap(draw, title, typeface, w - 8)
    x = np.asarray(x, np.float64)
    xs = [np.asarray(s.x if s.x is not None else x, np.float64) for s in series]
    ys = [np.asarray(v, np.float64) for s in series for v in (s.y, s.low, s.high) if v is not None]
    fx = np.log10 if log_x else (lambda v: v)
    fy = np.log10 if log_y else (lambda v: v)
    finite = np.concatenate([v[np.isfinite(v) & (v > 0 if log_y else True)] for v in ys])
    y0, y1 = (float(fy(finite.min())), float(fy(finite.max()))) if finite.size else (0.0, 1.0)
    pad = 0.05 * max(y1 - y0, 1e-6 * max(abs(y1), 1))
    y0, y1 = y0 - pad, y1 + pad
    every_x = np.concatenate([x, *xs])
    x0, x1 = float(fx(every_x.min())), float(fx(every_x.max()))
    x1 = x1 if x1 > x0 else x0 + 1
    x_ticks = ticks(10**x0 if log_x else x0, 10**x1 if log_x else x1, log_x)
    y_ticks = ticks(10**y0 if log_y else y0, 10**y1 if log_y else y1, log_y)
    widest = max((draw.textlength(_number(t), font=typeface) for t in y_ticks), default=0)
    left = int(widest) + 8 + (line_height if y_label else 0)
    top = 6 + line_height * len(title_lines) if title_lines else 8
    bottom = line_height + 4 + (line_height if x_label else 0)
    right = 14

    def px(v):
        return left + (np.asarray(fx(v), np.float64) - x0) / (x1 - x0) * (w - left - right)

    def py(v):
        with np.errstate(divide="ignore", invalid="ignore"):
            value = fy(np.asarray(v, np.float64))
        return top + (y1 - value) / (y1 - y0) * (h - top - bottom)

    grid, ink = tuple(int(c) for c in GRID), (90, 90, 90)
    for t in x_ticks:
        draw.line([(px(t), top), (px(t), h - bottom)], fill=ink if t == 0 else grid)
        draw.text((px(t), h - bottom + 3), _number(t), fill=ink, font=typeface, anchor="ma")
    for t in y_ticks:
        draw.line([(left, py(t)), (w - right, py(t))], fill=ink if t == 0 else grid)
        draw.text((left - 4, py(t)), _number(t), fill=ink, font=typeface, anchor="rm")
    draw.rectangle([left, top, w - right, h - bottom], outline=ink)
    middle = (left + w - right) / 2
    draw.text((middle, h - 3), x_label, fill="black", font=typeface, anchor="md")
    for row, text in enumerate(title_lines):
        draw.text((w / 2, 4 + row * line_height), text, fill="black", font=typeface, anchor="ma")
    if y_label:  # rotated a quarter turn, left of the tick labels
        label = Image.new("RGB", (h - top - bottom, line_height), "white")
        ImageDraw.Draw(label).text((label.width / 2, line_height / 2), y_label, fill="black",
                                   font=typeface, anchor="mm")  # fmt: skip
        image.paste(label.rotate(90, expand=True), (2, top))
    legend = []
    for i, (s, sx) in enumerate(zip(series, xs, strict=True)):
        index = i if s.color is None else s.color
        color = tuple(int(c) for c in CLASS_COLORS[(index + 1) % len(CLASS_COLORS)])
        if s.low is not None and s.high is not None:
            ok = np.isfinite(s.low) & np.isfinite(s.high)
            band = Image.new("RGB", (w, h), "white")
            upper = zip(px(sx[ok]), py(np.asarray(s.high)[ok]), strict=True)
            lower = zip(px(sx[ok][::-1]), py(np.asarray(s.low)[ok][::-1]), strict=True)
            outline = [*upper, *lower]
            if len(outline) >= 3:
                ImageDraw.Draw(band).polygon(outline, fill=color)
                mask = Image.new("L", (w, h), 0)  # the band, a quarter opaque
                ImageDraw.Draw(mask).polygon(outline, fill=60)
                image.paste(band, (0, 0), mask)
                draw = ImageDraw.Draw(image)
        ok = np.isfinite(s.y)
        points = list(zip(px(sx[ok]), py(np.asarray(s.y)[ok]), strict=True))
        if s.dashed:
            _dashed(draw, points, color)
        elif len(points) > 1 and not s.dots:
            draw.line(points, fill=color, width=2)
        else:
            for cx, cy in points:
                draw.ellipse([cx - 2.5, cy - 2.5, cx + 2.5, cy + 2.5], fill=color)
        if s.label:
            legend.append((s.label, color, s))
    if mark is not None:
        mx, my = float(px(mark[0])), float(py(mark[1]))
        draw.ellipse([mx - 6, my - 6, mx + 6, my + 6], outline=(214, 39, 40), width=2)
        below = my - 8 < top + line_height  # no room above
        label = f"best {_number(mark[0])}"
        half = draw.textlength(label, font=typeface) / 2  # kept inside the picture:
        lx = min(max(mx, half + 2), w - half - 2)
        where, anchor = ((lx, my + 8), "ma") if below else ((lx, my - 8), "md")
        draw.text(where, label, fill=(214, 39, 40), font=typeface, anchor=anchor)
    _legend(image, legend, (left, top, w - right, h - bottom))
    return np.asarray(image)


def _legend(image, entries: list, plot: tuple[int, int, int, int]) -> None:
    """Each (label, colour, series) a row with its line's sample, on white,
    in the corner of the `plot` box (left, top, right, bottom) that covers
    the fewest drawn pixels; as many rows as fit, then '+N more'."""
    from PIL import ImageDraw

    if not entries:
        return
    draw, typeface, row = ImageDraw.Draw(image), font(), FONT + 4
    left, top, right, bottom = plot
    fit = max(1, (bottom - top - 8) // row)
    if len(entries) > fit:
        entries = [*entries[: fit - 1], (f"+{len(entries) - fit + 1} more", None, None)]
    width = 34 + max(draw.textlength(label, font=typeface) for label, *_ in entries)
    height = row * len(entries) + 4
    pixels = np.asarray(image)  # drawn: darker than the grid lines (white, GRID)
    lefts, tops = (left + 3, right - 3 - width), (top + 3, bottom - 3 - height)
    corners = [(cx, cy) for cy in tops for cx in lefts]  # top left first, on a tie

    def covered(corner):
        cx, cy = int(corner[0]), int(corner[1])
        return np.sum(pixels[cy : cy + int(height), cx : cx + int(width)].min(axis=-1) < GRID[0])

    x, y = min(corners, key=covered)
    draw.rectangle([x, y, x + width, y + height], fill="white", outline=GRID_INK)
    for i, (label, color, s) in enumerate(entries):
        cy = y + 2 + row * i + row / 2
        if s is not None and s.dots:
            draw.ellipse([x + 14, cy - 2.5, x + 19, cy + 2.5], fill=color)
        elif s is not None and s.dashed:
            _dashed(draw, [(x + 6, cy), (x + 28, cy)], color, on=6, off=4)
        elif color is not None:
            draw.line([(x + 6, cy), (x + 28, cy)], fill=color, width=2)
        draw.text((x + 32, cy), label, fill="black", font=typeface, anchor="lm")


# Low to high: dark blue, teal, green, yellow (viridis's anchors).
_SURFACE = np.array([[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]],
                    np.float32)  # fmt: skip


def surface(
    values: np.ndarray,
    span: float,
    path: np.ndarray | None = None,
    title: str = "",
    levels: int = 12,
    size: int = 320,
) -> np.ndarray:
    """A function over the square [-span, span]^2 as a heatmap with contour
    lines, and `path` (n, 2) drawn on it: its start green, its end red.

    `values[i, j]` is at (a_i, b_j), a across and b up; colours follow
    log10 of the values where all are positive (a loss), dark = low.
    Returns (height, width, 3) uint8.
    """
    from PIL import Image, ImageDraw

    v = np.asarray(values, np.float64)
    v = np.log10(np.maximum(v, 1e-12)) if np.all(v > 0) else v
    lo, hi = float(np.min(v)), float(np.max(v))
    t = (v - lo) / max(hi - lo, 1e-12)  # 0 to 1
    t = np.asarray(
        Image.fromarray(t.T[::-1].astype(np.float32)).resize((size, size), Image.BILINEAR)
    )  # fmt: skip  (rows: b from the top down)
    bands = np.minimum((t * levels).astype(int), levels - 1)
    position = t * (len(_SURFACE) - 1)
    low = np.minimum(position.astype(int), len(_SURFACE) - 2)
    frac = (position - low)[..., None]
    image = _SURFACE[low] * (1 - frac) + _SURFACE[low + 1] * frac
    edge = np.zeros(bands.shape, bool)
    edge[:, 1:] |= bands[:, 1:] != bands[:, :-1]
    edge[1:, :] |= bands[1:, :] != bands[:-1, :]
    image[edge] = image[edge] * 0.45 + 255 * 0.55  # contour lines: paler
    typeface = font()
    title_lines = _wrap(ImageDraw.Draw(Image.new("RGB", (1, 1))), title, typeface, size - 8)
    top = 4 + (FONT + 3) * len(title_lines) if title_lines else 0
    canvas = Image.new("RGB", (size, size + top), "white")
    canvas.paste(Image.fromarray(image.astype(np.uint8)), (0, top))
    draw = ImageDraw.Draw(canvas)
    for row, text in enumerate(title_lines):
        draw.text((size / 2, 3 + row * (FONT + 3)), text, fill="black", font=typeface, anchor="ma")

    def px(ab):
        a, b = np.clip(np.asarray(ab, np.float64), -span, span).T
        return (a + span) / (2 * span) * (size - 1), top + (span - b) / (2 * span) * (size - 1)

    if path is not None and len(path):
        x, y = px(path)
        points = list(zip(x.tolist(), y.tolist(), strict=True))
        if len(points) > 1:
            draw.line(points, fill="white", width=2)
        for (cx, cy), color in ((points[0], (44, 160, 44)), (points[-1], (214, 39, 40))):
            draw.ellipse([cx - 4, cy - 4, cx + 4, cy + 4], fill=color, outline="white")
    return np.asarray(canvas)


# --------------------------------------------------------------------------
# The end of a run: what its probes measured, drawn.


def sharpness_chart(curves: dict[str, tuple]) -> np.ndarray:
    """Sharpness over training, a line per point ({point: (steps, mean, min,
    max, limit)}; '' for a single run), its band the min to max over seeds,
    each point's stability limit (2/eta for sgd) dashed in its colour."""
    series, x = [], next(iter(curves.values()))[0]
    for i, (point, (_, mean, low, high, limit)) in enumerate(curves.items()):
        many = not np.allclose(low, high, equal_nan=True)
        name = point or "sharpness"
        series.append(Series(mean, name, low if many else None, high if many else None, color=i))
        if np.isfinite(limit).any():
            label = "" if point else "stability limit"
            series.append(Series(limit, label, dashed=True, color=i))
    title = "sharpness (solid) and its stability limit, 2/eta for sgd (dashed)"
    return chart(x, series, title, "step", y_label="sharpness")


def landscape_pictures(line: np.ndarray, plane: np.ndarray, span: float, path,
                       plane_title: str | None = None) -> tuple:  # fmt: skip
    """(views/landscape/line, views/landscape/plane): the train and eval losses `line`
    (2, R) from the initial (a = 0) to the final (a = 1) weights, and the
    train loss `plane` (R, R) around the final ones with the weights' `path`
    on it (training/landscape.py), titled `plane_title` (None: random directions')."""
    alphas = np.linspace(-0.5, 1.5, line.shape[1])
    series = [Series(line[0], "train loss"), Series(line[1], "eval loss")]
    wide = np.all(line > 0) and line.max() / line.min() > 10
    title = "loss from the initial (0) to the final (1) weights"
    line_picture = chart(alphas, series, title, "a", log_y=wide, y_label="loss")
    title = plane_title or "train loss around the final weights; the path"
    return line_picture, surface(plane, span, path, title, size=192)  # a card's size (CARD)


def connectivity_pictures(train_loss: np.ndarray, eval_error: np.ndarray | None,
                          barriers: np.ndarray, connected: float,
                          shown: int = 16) -> dict[str, np.ndarray]:  # fmt: skip
    """{tag: picture} of a point's seed pairs (training/connectivity.py):
    views/connectivity/train_loss, each pair's loss along the line between
    its two networks (its first `shown` pairs, and the median of all), the
    same of the eval error, and views/connectivity/barriers: the fraction
    of pairs whose `barriers` (of the eval error; of the train loss for a
    regression) are at most x, the `connected` line dashed."""
    alphas = np.linspace(0.0, 1.0, train_loss.shape[1])
    out = {}
    for name, values in (("train_loss", train_loss), ("eval_error", eval_error)):
        if values is None:
            continue
        what = name.replace("_", " ")
        series = [Series(v, "", color=0) for v in values[:shown]]
        series.append(Series(np.median(values, 0), f"median of {len(values)} pairs", color=1))
        title = f"{what} on the line from one seed (0) to another (1)"
        out[f"views/connectivity/{name}"] = chart(alphas, series, title, "a", y_label=what)
    error = eval_error is not None
    barriers = np.sort(barriers)
    fraction = np.arange(1, len(barriers) + 1) / len(barriers)
    steps = np.concatenate([[0.0], np.repeat(fraction, 2)[:-1]])  # (a step up at each barrier)
    what = "eval error barrier" if error else "train loss barrier"
    series = [Series(steps, f"pairs with a {what} <= x", x=np.repeat(barriers, 2))]
    if error:
        series.append(Series(np.array([0.0, 1.0]), f"connected: <= {connected:g}", dashed=True,
                             x=np.array([connected, connected])))  # fmt: skip
    xs = np.unique(np.concatenate([barriers, [0.0], [connected] if error else []]))
    out["views/connectivity/barriers"] = chart(
        xs, series, f"{what}s over {len(barriers)} seed pairs", what, y_label="fraction of pairs"
    )
    return out


def activation_chart(name: str, x: np.ndarray, f: np.ndarray, slope: np.ndarray) -> np.ndarray:
    """An activation f and its derivative f' over `x` (views/activation/NAME)."""
    series = [Series(f, f"f(x) = {name}(x)"), Series(slope, "f'(x), its slope", dashed=True)]
    return chart(x, series, f"activation {name}", "x", y_label="f(x), f'(x)")


def fit_chart(x: np.ndarray, y: np.ndarray, line_x: np.ndarray, fitted: np.ndarray,
              true: np.ndarray | None = None, title: str = "") -> np.ndarray:  # fmt: skip
    """A regression on one input: the data (x, y) as dots, the model's
    `fitted` values over `line_x`, and the `true` line (dashed) if known."""
    series = [Series(y, "data", x=x, dots=True, color=0)]
    if true is not None:  # under the fitted line
        series.append(Series(true, "true line", dashed=True, color=2))
    series.append(Series(fitted, "fitted line", color=1))
    return chart(line_x, series, title, "x", y_label="y")


def spectral_density_chart(
    grid: np.ndarray,
    density: np.ndarray,
    limit: float | None = None,
    title: str = "Hessian eigenvalue density",
    floor: float = 1e-5,
) -> np.ndarray:
    """The Hessian's eigenvalue `density` over `grid` (training/curvature.py's
    `smoothed_density`) on a log axis, and the stability `limit` (2/eta for
    sgd; None where there is none) as a dashed vertical line.

    The log axis shows the few outliers beside the bulk of eigenvalues near
    0; values below `floor` x the peak are drawn at that floor (the density
    between separate eigenvalues is as small as a Gaussian's tail). A limit
    more than the spectrum's range beyond it is named in the legend, not
    drawn, so that the density keeps the width of the chart.
    """
    grid, density = np.asarray(grid, np.float64), np.asarray(density, np.float64)
    peak = float(density.max())
    series = [Series(np.maximum(density, floor * peak), "density", color=0)]
    if limit is not None:
        lo, hi, label = float(grid[0]), float(grid[-1]), f"stability limit {_number(limit)}"
        if lo - (hi - lo) <= limit <= hi + (hi - lo):
            x, y = np.array([limit, limit]), np.array([floor * peak, peak])
        else:
            x, y, label = grid, np.full_like(grid, np.nan), f"{label}, off the chart"
        series.append(Series(y, label, dashed=True, color=2, x=x))
    return chart(grid, series, title, "eigenvalue", log_y=True, y_label="density")

"""Pictures drawn with NumPy: right colours in the right places."""

import numpy as np

from dashboards import pictures


def test_grid_points_are_in_image_order():
    points = pictures.grid_points(3, -1.0, 1.0).reshape(3, 3, 2)
    np.testing.assert_array_equal(points[0, 0], [-1.0, 1.0])  # top left
    np.testing.assert_array_equal(points[2, 2], [1.0, -1.0])  # bottom right


def test_decision_boundary_colours_sides_line_and_points():
    size = 100
    grid = pictures.grid_points(size, -1.0, 1.0)
    probabilities = (grid[:, 0] > 0).astype(np.float32).reshape(size, size)  # right = 1
    points = np.array([[-0.5, 0.5], [0.5, -0.5]])
    image = pictures.decision_boundary(probabilities, points, np.array([0, 1]), -1.0, 1.0)
    assert image.shape == (size, size, 3) and image.dtype == np.uint8
    left, right = image[5, 5].astype(int), image[5, 94].astype(int)
    assert right[2] > right[0], "class 1 side is blue"
    assert left[0] > left[2], "class 0 side is orange"
    assert (image[50, 49:51] == 0).all(axis=-1).any(), "the 0.5 contour is black"
    row, col = 25, 25  # the class-0 point at (-0.5, 0.5)
    np.testing.assert_array_equal(image[row, col], pictures.ORANGE.astype(np.uint8))


def test_curves_draw_each_function_where_it_is():
    x = np.linspace(-2, 2, 401)
    image = pictures.curves(x, [np.zeros_like(x) + 1.0, x], y_range=(-2, 2), size=(101, 101))
    assert image.shape == (101, 101, 3)
    blue, orange = pictures.COLORS[0].astype(np.uint8), pictures.COLORS[1].astype(np.uint8)
    # y = 1 is the row a quarter of the way down; y = x is the diagonal.
    assert (image[25, 10] == blue).all()
    assert (image[10, 90] == orange).all() and (image[90, 10] == orange).all()
    assert (image[50, 5] == 0).all(), "the x axis is black"


def test_a_vertical_jump_is_drawn_without_gaps():
    x = np.linspace(-1, 1, 1001)
    image = pictures.curves(x, [(x >= 0).astype(float)], y_range=(-0.5, 1.5), size=(100, 100))
    blue = (image == pictures.COLORS[0].astype(np.uint8)).all(axis=-1)
    # y = 0 is row 74, y = 1 row 25: every row between has some blue pixel.
    assert blue[25:75].any(axis=1).all()


def test_confusion_matrix_shades_rows_by_fraction():
    confusion = np.array([[9, 1], [5, 5]])
    image = pictures.confusion_matrix(confusion, ["cat", "dog"], cell=40)
    assert image.shape == (90 + 80, 90 + 80, 3)
    corner = lambda i, j: image[90 + i * 40 + 2, 90 + j * 40 + 2].astype(int)  # noqa: E731
    # 90% of row 0 on the diagonal is darker (less red) than row 1's 50%.
    assert corner(0, 0)[0] < corner(1, 1)[0] < corner(0, 1)[0]


def test_captioned_grid_lays_out_images_with_captions():
    images = np.zeros((10, 28, 28), np.uint8)
    grid = pictures.captioned_grid(images, ["Shirt -> Coat"] * 10, columns=4, scale=2)
    assert grid.shape == (3 * (56 + 28), 4 * 110, 3)


def colour(image, rgb) -> np.ndarray:
    """(height, width) bool: the pixels of exactly that colour."""
    return (image == np.asarray(rgb, np.uint8)).all(axis=-1)


def test_activation_chart_draws_f_and_f_prime_with_a_legend_readable_in_a_card():
    x = np.linspace(-4, 4, 801)
    image = pictures.activation_chart("relu", x, np.maximum(x, 0), (x > 0).astype(float))
    assert pictures.FONT * pictures.shown_scale(image.shape) >= 12  # was 11 * 0.75 (160 x 240)
    f, slope = colour(image, pictures.BLUE), colour(image, pictures.CLASS_COLORS[2])
    rows, cols = np.nonzero(f)
    rising = cols > np.median(cols)  # f's rising half: up (fewer rows) as it goes right
    assert np.corrcoef(cols[rising], rows[rising])[0, 1] < -0.9
    # f' is 0 then 1: green on one row left of 0 and on a higher one right of it.
    left, right = np.nonzero(slope[:, : image.shape[1] // 3]), np.nonzero(slope[:, -40:])
    assert np.median(right[0]) < np.median(left[0]) - 20
    # The legend: a sample of each line, on white in a grey box, with its name.
    box = np.nonzero(colour(image, pictures.GRID_INK))
    assert box[0].size > 100
    inside = image[box[0].min() : box[0].max(), box[1].min() : box[1].max()]
    assert colour(inside, pictures.BLUE).any() and colour(inside, pictures.CLASS_COLORS[2]).any()
    assert (inside.max(axis=-1) < 80).sum() > 100, "the names, in black"
    assert (image[:, :14].max(axis=-1) < 80).sum() > 50, "the y axis has a label"


def test_a_chart_puts_its_legend_where_its_lines_are_not():
    x = np.linspace(0, 1, 50)
    falling = pictures.chart(x, [pictures.Series(1 - x, "falling")])  # crosses top left
    rising = pictures.chart(x, [pictures.Series(x, "rising")])  # crosses top right
    for image, side in ((falling, "right"), (rising, "left")):
        cols = np.nonzero(colour(image, pictures.GRID_INK))[1]
        middle = image.shape[1] / 2
        assert (cols > middle).all() if side == "right" else (cols < middle).all()


def test_a_long_title_is_wrapped_to_the_width():
    x = np.arange(3.0)
    title = "final eval/loss against learning_rate: median over seeds, min to max"
    image = pictures.chart(x, [pictures.Series(x, "")], title)
    dark = (image[:, :].max(axis=-1) < 80)[:40].any(axis=1)
    assert dark[:18].any() and dark[18:36].any(), "two lines of title"
    assert (
        not (image[:40, :3].max(axis=-1) < 80).any()
        and not (image[:40, -3:].max(axis=-1) < 80).any()
    )

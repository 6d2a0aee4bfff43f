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

"""The Playground network picture: right colours, lines and labels in the right places."""

import numpy as np
import pytest

from dashboards import network, pictures

R = 10  # resolution of every unit's (R, R) values
BLUE, ORANGE, WHITE = (c.astype(np.uint8) for c in (pictures.BLUE, pictures.ORANGE, pictures.WHITE))
BLANK = np.full((20, 20, 3), 255, np.uint8)  # an all-white output picture


def constant(value: float) -> np.ndarray:
    return np.full((R, R), value, np.float32)


def quarter(image: np.ndarray, corner: tuple[int, int], panel: int, down=1, across=1):
    """The pixel `down` and `across` quarters into a panel whose top-left is `corner`."""
    return image[corner[0] + down * panel // 4, corner[1] + across * panel // 4]


def test_units_are_blue_when_positive_orange_when_negative_white_at_zero():
    inputs = [constant(2.0), constant(-3.0), constant(0.0)]
    hidden = [[constant(0.5), constant(-0.1)]]
    weights = [np.zeros((3, 2)), np.zeros((2, 1))]
    image = network.network(inputs, ["a", "b", "c"], hidden, weights, BLANK)
    place = network.layout(3, [2])
    (a, b, c), (h0, h1) = place.units
    np.testing.assert_array_equal(quarter(image, a, place.panel), BLUE)
    np.testing.assert_array_equal(quarter(image, b, place.panel), ORANGE)
    np.testing.assert_array_equal(quarter(image, c, place.panel), WHITE)
    np.testing.assert_array_equal(quarter(image, h0, place.panel), BLUE)
    np.testing.assert_array_equal(quarter(image, h1, place.panel), ORANGE)


def test_row_0_is_the_top_and_strength_is_relative_to_the_units_largest_value():
    updown = constant(1.0)
    updown[R // 2 :] = -1.0  # top half positive, bottom half negative
    leftright = constant(1.0)
    leftright[:, R // 2 :] = 0.25  # left at full strength, right pale
    image = network.network([updown, leftright], ["u", "l"], [], [np.zeros((2, 1))], BLANK)
    place = network.layout(2, [])
    u, lr = place.units[0]
    np.testing.assert_array_equal(quarter(image, u, place.panel, down=1), BLUE)
    np.testing.assert_array_equal(quarter(image, u, place.panel, down=3), ORANGE)
    np.testing.assert_array_equal(quarter(image, lr, place.panel, across=1), BLUE)
    pale = quarter(image, lr, place.panel, across=3).astype(int)
    expected = pictures.WHITE + (pictures.BLUE - pictures.WHITE) * 0.25
    np.testing.assert_allclose(pale, expected, atol=2)


def line_pixel(weight: np.ndarray) -> np.ndarray:
    """The pixel halfway along the line from a single input to the output."""
    image = network.network([constant(1.0)], ["x"], [], [weight], BLANK)
    place = network.layout(1, [])
    (row, col), left = place.units[0][0], place.output[1]
    return image[row + place.panel // 2, (col + place.panel + left) // 2]


def test_a_positive_weight_is_a_blue_line_and_a_negative_one_orange():
    np.testing.assert_array_equal(line_pixel(np.array([[1.5]])), BLUE)
    np.testing.assert_array_equal(line_pixel(np.array([[-1.5]])), ORANGE)


def test_two_logits_draw_what_moves_class_1():
    # w[:, 1] - w[:, 0] = -2 < 0, although w[:, 1] alone is positive.
    np.testing.assert_array_equal(line_pixel(np.array([[3.0, 1.0]])), ORANGE)
    np.testing.assert_array_equal(line_pixel(np.array([[1.0, 3.0]])), BLUE)


def test_a_bigger_weight_draws_a_thicker_line():
    inputs = [constant(1.0), constant(1.0)]
    image = network.network(inputs, ["x1", "x2"], [], [np.array([[1.0], [0.2]])], BLANK)
    place = network.layout(2, [])
    top, left, bottom, _ = place.output
    (_, col), _ = place.units[0]
    middle = image[:, (col + place.panel + left) // 2]
    blue = (middle == BLUE).all(axis=-1)
    centre = (top + bottom) // 2
    upper, lower = blue[:centre].sum(), blue[centre:].sum()  # x1's line, x2's line
    assert lower > 0, "the small weight still has its line"
    assert upper > 2 * lower


def test_tiny_weights_draw_no_line():
    inputs = [constant(1.0), constant(1.0)]
    image = network.network(inputs, ["x1", "x2"], [], [np.array([[1.0], [0.001]])], BLANK)
    place = network.layout(2, [])
    top, left, bottom, _ = place.output
    middle = image[(top + bottom) // 2 :, (place.units[0][0][1] + place.panel + left) // 2]
    assert (middle == WHITE).all()


def test_the_output_picture_fills_the_output_box_scaled():
    output = np.zeros((30, 30, 3), np.uint8)
    output[:, :15] = (200, 0, 0)  # left red, right green
    output[:, 15:] = (0, 200, 0)
    image = network.network([constant(1.0)], ["x"], [[constant(1.0)]], [[[1.0]], [[1.0]]], output)
    top, left, bottom, right = network.layout(1, [1]).output
    assert bottom - top == right - left == network.OUTPUT[0]  # 1 unit: the smallest box
    side = bottom - top
    np.testing.assert_array_equal(image[top + side // 4, left + side // 4], (200, 0, 0))
    np.testing.assert_array_equal(image[bottom - side // 4, right - side // 4], (0, 200, 0))


def test_only_max_units_are_drawn_and_the_count_under_the_column_says_so():
    place = network.layout(10, [16, 4], max_units=6)
    assert [len(column) for column in place.units] == [6, 6, 4]

    def draw(num_inputs: int, units: int) -> np.ndarray:
        hidden = [[constant(1.0)] * units]
        weights = [np.ones((num_inputs, units)), np.ones((units, 1))]
        inputs = [constant(1.0)] * num_inputs
        return network.network(inputs, ["x"] * num_inputs, hidden, weights, BLANK)

    six, sixteen = draw(6, 6), draw(10, 16)
    assert six.shape == sixteen.shape
    footer = slice(six.shape[0] - network.FOOTER, None)  # '6 inputs' and '6 units' or '6 of 16'
    (_, inputs_col), (_, layer_col) = place.units[0][0], place.units[1][0]
    for col in inputs_col, layer_col:
        strip = slice(col - 12, col + place.panel + 12)
        assert (six[footer, strip] != 255).any(), "a count is written"
        assert (six[footer, strip] != sixteen[footer, strip]).any(), "'6 of ...'"
    np.testing.assert_array_equal(six[: footer.start], sixteen[: footer.start])  # same panels


def test_a_deep_network_is_drawn_in_bands_that_fit_a_card():
    assert network.bands(1) == [(0, 1)] and network.bands(3) == [(0, 3)]
    assert network.bands(8) == [(0, 3), (3, 6), (6, 8)]
    sizes = [16] * 8
    hidden = [[constant(float(layer))] * 6 for layer in range(1, 9)]
    weights = [np.ones((a, b)) for a, b in zip([2, *sizes], [*sizes, 1], strict=True)]
    for columns in network.bands(8):
        image = network.network([constant(1.0)] * 2, ["x1", "x2"], hidden, weights, BLANK,
                                sizes=[2, *sizes], columns=columns)  # fmt: skip
        place = network.layout(2, sizes, columns=columns)
        assert image.shape == (*place.shape, 3)
        assert image.shape[0] <= network.SIZE[0] and image.shape[1] <= network.SIZE[1]
        assert pictures.FONT * pictures.shown_scale(image.shape) >= 12
        assert (place.output is not None) == (columns[1] == 8), "only the last band has the output"
        assert len(place.units) == columns[1] - columns[0] + 1


def test_no_hidden_layer_joins_inputs_to_the_output():
    image = network.network([constant(1.0), constant(-1.0)], ["x1", "x2"], [], [[[1], [-1]]], BLANK)
    place = network.layout(2, [])
    assert image.shape == (*place.shape, 3)
    assert len(place.units) == 1
    assert (image == BLUE).all(axis=-1).any() and (image == ORANGE).all(axis=-1).any()


@pytest.mark.parametrize(
    "num_inputs, sizes, panel", [(2, [2], None), (3, [8, 4, 1], 20), (12, [], None)]
)
def test_image_shape_matches_layout_and_boxes_fit(num_inputs, sizes, panel):
    hidden = [[constant(0.5)] * n for n in sizes]
    fans = [num_inputs, *sizes, 1]
    weights = [np.ones((a, b)) for a, b in zip(fans[:-1], fans[1:], strict=True)]
    image = network.network(
        [constant(1.0)] * num_inputs, ["x"] * num_inputs, hidden, weights, BLANK, panel=panel
    )
    place = network.layout(num_inputs, sizes, panel=panel)
    assert image.shape == (*place.shape, 3) and image.dtype == np.uint8
    height, width = place.shape
    side = place.panel
    boxes = [(r, c, r + side, c + side) for column in place.units for r, c in column]
    for top, left, bottom, right in [*boxes, place.output]:
        assert network.HEADER <= top and bottom <= height and 0 < left and right < width


def test_a_missing_kernel_is_an_error():
    with pytest.raises(ValueError, match="kernels"):
        network.network([constant(1.0)], ["x"], [[constant(1.0)]], [np.ones((1, 1))], BLANK)

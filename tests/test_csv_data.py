"""data.name=csv: the user's own CSV files, and every way they can be wrong."""

import ml_collections
import numpy as np
import pytest

from data import csv_file
from plumbing.failures import UserError

# Ten examples (i, 10 i) with labels -1, 1 and 3, behind a comment, a header, blank
# lines and spaces; row 7's label is written "3.0".
LABELS = [-1, 1, 3, 1, -1, 3, 3, 1, -1, 1]
GOOD = "# made by hand\n\n x1 , x2 ,label\n" + "".join(
    f"{i}, {10 * i} ,{'3.0' if i == 6 else label}\n" + ("\n" if i == 4 else "")
    for i, label in enumerate(LABELS)
)


def make_config(tmp_path, text: str | bytes = GOOD, **overrides) -> ml_collections.ConfigDict:
    """The data section for `text` as train.csv (bytes are written as they are)."""
    path = tmp_path / "train.csv"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    config = ml_collections.ConfigDict(
        dict(
            name="csv",
            path=str(path),
            eval_path="",
            task="classification",
            num_eval=3,
            seed=0,
            standardize=False,
        )
    )
    config.update(overrides)
    return config


def write_eval(tmp_path, text: str) -> str:
    (tmp_path / "eval.csv").write_text(text)
    return str(tmp_path / "eval.csv")


def test_a_file_with_a_header_round_trips(tmp_path):
    d = csv_file.load(make_config(tmp_path))
    assert d.x_train.shape == (7, 2) and d.x_eval.shape == (3, 2)
    assert d.y_train.shape == (7,) and d.y_eval.shape == (3,)
    assert d.x_train.dtype == np.float32 and d.y_train.dtype == np.int32
    assert d.num_classes == 3 and d.class_names == ("-1", "1", "3")
    assert d.truth is None and d.images_eval is None
    x, y = np.concatenate([d.x_train, d.x_eval]), np.concatenate([d.y_train, d.y_eval])
    assert sorted(x[:, 0]) == list(range(10))  # every row once, train and eval together
    for (i, ten_i), class_id in zip(x, y, strict=True):
        assert ten_i == 10 * i and d.class_names[class_id] == str(LABELS[int(i)])
    assert list(x[:, 0]) != list(range(10))  # shuffled before the split


def test_the_split_follows_the_seed(tmp_path):
    a, b = (csv_file.load(make_config(tmp_path, seed=1)) for _ in range(2))
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_eval, b.y_eval)
    c = csv_file.load(make_config(tmp_path, seed=2))
    assert set(a.x_eval[:, 0]) != set(c.x_eval[:, 0])
    order = np.random.default_rng(1 + 1).permutation(10)  # data/__init__.py's _split's rule
    np.testing.assert_array_equal(a.x_eval[:, 0], order[7:])


def test_standardize_uses_the_training_rows_statistics(tmp_path):
    text = "".join(f"{i},{i * i * 100},0.1,{i % 2}\n" for i in range(12))
    raw = csv_file.load(make_config(tmp_path, text, num_eval=4))
    d = csv_file.load(make_config(tmp_path, text, num_eval=4, standardize=True))
    np.testing.assert_allclose(d.x_train[:, :2].mean(axis=0), 0, atol=1e-6)
    np.testing.assert_allclose(d.x_train[:, :2].std(axis=0), 1, rtol=1e-5)
    # The constant column is only centred: dividing by its std (~1e-17, rounding) would make noise.
    np.testing.assert_allclose(d.x_train[:, 2], 0, atol=1e-6)
    np.testing.assert_allclose(d.x_eval[:, 2], 0, atol=1e-6)
    mean, std = raw.x_train.mean(axis=0), raw.x_train.std(axis=0)
    np.testing.assert_allclose(d.x_eval[:, :2], (raw.x_eval[:, :2] - mean[:2]) / std[:2], rtol=1e-5)
    np.testing.assert_array_equal(d.y_eval, raw.y_eval)


def test_an_eval_file(tmp_path):
    eval_path = write_eval(tmp_path, "a,b,c\n100,200,3\n-5,0,-1\n")
    d = csv_file.load(make_config(tmp_path, eval_path=eval_path, num_eval=0, standardize=True))
    assert len(d.x_train) == 10  # no row held out
    np.testing.assert_allclose(d.x_train.mean(axis=0), 0, atol=1e-6)
    scaled = (np.array([[100, 200], [-5, 0]]) - [4.5, 45]) / np.array([1, 10]) / np.std(range(10))
    np.testing.assert_allclose(d.x_eval, scaled, rtol=1e-5)
    np.testing.assert_array_equal(d.y_eval, [2, 0])  # the training file's class ids


def test_regression(tmp_path):
    text = "x,y\n1,0.5\n2,-1.25\n3,1e3\n4,7\n"
    d = csv_file.load(make_config(tmp_path, text, task="regression", num_eval=1))
    assert d.num_classes == 0 and d.is_regression and d.class_names is None
    assert d.y_train.shape == (3, 1) and d.y_eval.shape == (1, 1) and d.y_train.dtype == np.float32
    x, y = np.concatenate([d.x_train, d.x_eval]), np.concatenate([d.y_train, d.y_eval])
    targets = {1: 0.5, 2: -1.25, 3: 1e3, 4: 7}
    assert sorted(x[:, 0]) == [1, 2, 3, 4]
    assert all(target == targets[int(i)] for (i,), (target,) in zip(x, y, strict=True))


def test_quoted_fields(tmp_path):
    text = '"length, cm", "width",label\n1, "2", 0\n3,4,1\n5,6,1\n'
    d = csv_file.load(make_config(tmp_path, text, num_eval=1))
    assert sorted(np.concatenate([d.x_train, d.x_eval])[:, 1]) == [2, 4, 6]


def test_a_byte_order_mark_and_crlf_line_ends_keep_the_line_numbers(tmp_path):
    config = make_config(tmp_path, "\ufeffx,y\r\n1,0\r\n\r\n2,q\r\n")
    with pytest.raises(UserError) as e:
        csv_file.load(config)
    assert str(e.value).startswith(f"{config.path}:4:2: 'q' is not a number")


def raises(config, message: str) -> str:
    """The UserError of loading `config`, which must start with `message` and be one line."""
    with pytest.raises(UserError) as e:
        csv_file.load(config)
    text = str(e.value)
    assert text.startswith(message), text
    assert "\n" not in text
    return text


def test_no_path():
    config = ml_collections.ConfigDict(dict(path="", task="classification"))
    assert raises(config, "data.name=csv needs") == "data.name=csv needs --config.data.path=FILE"


def test_an_unknown_task(tmp_path):
    raises(make_config(tmp_path, task="ranking"), "data.task must be 'classification' or")


def test_a_missing_file_or_a_folder(tmp_path):
    raises(make_config(tmp_path, path=str(tmp_path / "nope.csv")), f"{tmp_path}/nope.csv: no such")
    raises(make_config(tmp_path, path=str(tmp_path)), f"{tmp_path}: is a folder, not a CSV file")


def test_a_file_that_is_not_utf8(tmp_path):
    config = make_config(tmp_path, b"x,y\n1,0\n\n2,\xe9t\xe9\n")
    raises(config, f"{config.path}:4: byte 0xe9 is not UTF-8")


@pytest.mark.parametrize("text", ["", "\n  \n", "# only comments\n", "# a header:\nx1,x2,y\n"])
def test_no_data_rows(tmp_path, text):
    config = make_config(tmp_path, text)
    message = raises(config, f"{config.path}: no data rows")
    assert "the label last" in message  # a hint of the format


@pytest.mark.parametrize(
    "text, where, found",
    [("# c\n\n1,2,0\n\n3,4\n", "5", "expected 3 fields (as on line 3), found 2"),
     ("x,y,z\n1,2,0\n3,4,5,1\n", "3", "expected 3 fields (as on line 2), found 4")],
)  # fmt: skip
def test_a_ragged_row(tmp_path, text, where, found):
    config = make_config(tmp_path, text)
    raises(config, f"{config.path}:{where}: {found}")


def test_a_header_of_another_width(tmp_path):
    config = make_config(tmp_path, "x,y\n1,2,0\n3,4,1\n")
    raises(
        config, f"{config.path}:1: the header has 2 fields, but the first data row (line 2) has 3"
    )


@pytest.mark.parametrize(
    "row, column, what",
    [("1,x,1", 2, "'x' is not a number"), ("1,,1", 2, "'' is not a number"),
     ("nan,2,1", 1, "'nan' is NaN"), ("1, -inf ,1", 2, "'-inf' is infinite"),
     ("1,2,zero", 3, "'zero' is not a number")],
)  # fmt: skip
def test_a_bad_field(tmp_path, row, column, what):
    config = make_config(tmp_path, f"a,b,c\n# c\n1,2,0\n{row}\n")
    raises(config, f"{config.path}:4:{column}: {what}")
    config = make_config(tmp_path, f"1,2,0\n{row}\n")  # no header: only the first row can be one
    raises(config, f"{config.path}:2:{column}: {what}")


def test_a_class_label_that_is_not_an_integer(tmp_path):
    config = make_config(tmp_path, "1,2,0\n1,2,1\n\n1,2,2.5\n")
    raises(config, f"{config.path}:4:3: label 2.5 is not an integer")
    csv_file.load(make_config(tmp_path, "1,2,0\n1,2,1\n\n1,2,2.5\n", task="regression", num_eval=1))


def test_a_single_class(tmp_path):
    config = make_config(tmp_path, "1,7\n2,7.0\n3,7\n", num_eval=1)
    raises(
        config, f"{config.path}: every training row has label 7; classification needs at least 2"
    )


def test_fewer_than_two_columns(tmp_path):
    config = make_config(tmp_path, "x\n1\n2\n")
    raises(config, f"{config.path}:2: found 1 field, need at least 2")


def test_an_eval_file_of_another_width(tmp_path):
    eval_path = write_eval(tmp_path, "a,b\n\n1,0\n")
    raises(make_config(tmp_path, eval_path=eval_path), f"{eval_path}:3: 2 fields, but ")


def test_an_eval_label_that_is_no_training_class(tmp_path):
    eval_path = write_eval(tmp_path, "1,2,1\n# c\n1,2,7\n")
    config = make_config(tmp_path, eval_path=eval_path)
    raises(
        config, f"{eval_path}:3:3: label 7 is not a class of {config.path} (its labels: -1, 1, 3)"
    )


def test_errors_in_the_eval_file_name_it(tmp_path):
    config = make_config(tmp_path, eval_path=str(tmp_path / "missing.csv"))
    raises(config, f"{tmp_path}/missing.csv: no such file")
    eval_path = write_eval(tmp_path, "1,2,1\n1,2,0.5\n")
    raises(
        make_config(tmp_path, eval_path=eval_path), f"{eval_path}:2:3: label 0.5 is not an integer"
    )


@pytest.mark.parametrize("num_eval", [-1, 10, 11])
def test_num_eval_out_of_range(tmp_path, num_eval):
    config = make_config(tmp_path, num_eval=num_eval)
    raises(config, f"{config.path}: data.num_eval={num_eval}, but the file has 10 data rows")


def test_num_eval_0_holds_out_a_fifth(tmp_path):
    d = csv_file.load(make_config(tmp_path, num_eval=0))
    assert (len(d.x_train), len(d.x_eval)) == (8, 2)

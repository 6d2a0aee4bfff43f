"""Seeds trained together in one vmapped program equal the runs trained alone."""

import os

import numpy as np
import pytest
from conftest import (
    assert_same_numbers,
    read_events,
    read_image,
    read_scalars,
    same_numbers_precision,
    write_mnist,
)
from tensorboard.plugins.hparams import metadata as hparams_metadata

import train
from configs import mnist_cnn


@pytest.fixture
def sweep_config(xor_config):
    xor_config.num_steps, xor_config.log_every, xor_config.eval_every = 200, 100, 100
    xor_config.model.hidden_sizes = (4,)
    return xor_config


def test_members_equal_single_runs_and_are_separate_runs(sweep_config, tmp_path):
    sweep_config.seed, sweep_config.num_seeds = 5, 3
    final = train.train_and_evaluate(sweep_config, str(tmp_path / "sweep"))
    sweep_config.num_seeds = 1
    for seed in (5, 6, 7):
        sweep_config.seed = seed
        alone = train.train_and_evaluate(sweep_config, str(tmp_path / f"alone{seed}"))
        for tag in ("train/loss", "train/accuracy", "eval/loss", "eval/accuracy"):
            member = final[f"seed={seed}/{tag}"]
            np.testing.assert_allclose(member, alone[tag], rtol=1e-4, atol=1e-6)
        # its own run, with its own hparams row, histograms and pictures
        run = tmp_path / "sweep" / f"seed={seed}"
        assert read_scalars(run, "train/loss")[200] == final[f"seed={seed}/train/loss"]
        tags = read_events(run).Tags()["tensors"]
        assert "_hparams_/session_start_info" in tags
        assert {"weights/layers/0/kernel", "views/decision_boundary/train"} <= set(tags)
    losses = [final[f"seed={s}/train/loss"] for s in (5, 6, 7)]
    assert final["aggregate/train/loss/mean"] == pytest.approx(np.mean(losses))
    assert final["aggregate/train/loss/max"] == pytest.approx(max(losses))
    aggregate = tmp_path / "sweep" / "aggregate"
    mean = read_scalars(aggregate, "train/loss/mean")[200]
    assert mean == pytest.approx(final["aggregate/train/loss/mean"])
    solved = [final[f"seed={s}/train/accuracy"] == 1 for s in (5, 6, 7)]
    assert read_scalars(aggregate, "solved")[200] == pytest.approx(np.mean(solved))
    assert read_scalars(aggregate, "diverged")[200] == 0
    assert any(solved), "no member solved XOR: steps to solve untested"
    # the first log step at which a member reached 100%
    assert final["aggregate/steps_to_solve/median"] in (100, 200)


def test_a_diverging_member_is_reported_frozen_and_the_others_go_on(sweep_config, tmp_path, capsys):
    sweep_config.sweep.optimizer.learning_rate = (0.05, 1e30)  # Adam
    final = train.train_and_evaluate(sweep_config, str(tmp_path))
    printed = capsys.readouterr().out
    assert "learning_rate=1e+30/seed=0 diverged between steps 0 and 100: its loss or" in printed
    assert final["learning_rate=1e+30/aggregate/diverged"] == 1
    assert final["learning_rate=0.05/aggregate/diverged"] == 0
    going = read_scalars(tmp_path / "learning_rate=0.05" / "seed=0", "train/loss")
    assert going[200] < going[100] < 0.7  # the others went on learning
    # its train curves end where it diverged; it keeps its last good (initial) weights
    member = tmp_path / "learning_rate=1e+30" / "seed=0"
    assert "train/loss" not in read_events(member).Tags()["tensors"]
    evaluated = read_scalars(member, "eval/loss")
    assert np.isfinite(evaluated[200]) and evaluated[0] == evaluated[100] == evaluated[200]


def test_a_sweep_resumed_after_a_member_diverged_ends_as_the_uninterrupted_one(
    sweep_config, tmp_path, capsys
):
    """The checkpoint keeps who diverged and when: resumed, the diverged
    member is still reset and left out, and every run's events are those
    of the sweep trained without a break."""
    sweep_config.sweep.optimizer.learning_rate = (0.05, 1e30)
    sweep_config.checkpoint_every = 100
    whole = train.train_and_evaluate(sweep_config, str(tmp_path / "whole"))
    capsys.readouterr()  # (the whole run's lines)
    sweep_config.num_steps = 100  # the same sweep in two parts: 100 steps, then on to 200
    train.train_and_evaluate(sweep_config, str(tmp_path / "parts"))
    assert "learning_rate=1e+30/seed=0 diverged between steps 0 and 100" in capsys.readouterr().out
    sweep_config.num_steps = 200
    resumed = train.train_and_evaluate(sweep_config, str(tmp_path / "parts"))
    said = capsys.readouterr().out
    assert "resumed at step 100" in said and "diverged between" not in said  # (said before)
    assert resumed == whole
    assert resumed["learning_rate=1e+30/aggregate/diverged"] == 1
    for run in ("learning_rate=1e+30/seed=0", "learning_rate=0.05/seed=0"):
        parts = read_events(tmp_path / "parts" / run)
        alone = read_events(tmp_path / "whole" / run)
        for tag in ("train/loss", "eval/loss", "eval/accuracy"):
            # (the first part's end evaluated at step 100: the whole run did too)
            if tag in alone.Tags()["tensors"]:
                assert read_scalars(tmp_path / "parts" / run, tag) == read_scalars(
                    tmp_path / "whole" / run, tag
                )
            else:  # the diverged member's train curve ends where it diverged, in both
                assert tag not in parts.Tags()["tensors"]


def test_every_member_diverging_stops_the_sweep(sweep_config, tmp_path):
    sweep_config.optimizer.name, sweep_config.num_seeds = "sgd", 2
    sweep_config.optimizer.learning_rate = 1e30
    with pytest.raises(train.Diverged, match=r"every member \(2\) diverged by step 100"):
        train.train_and_evaluate(sweep_config, str(tmp_path))


def test_bad_num_seeds(sweep_config, tmp_path):
    sweep_config.num_seeds = 0
    with pytest.raises(train.UserError, match="num_seeds must be >= 1"):
        train.train_and_evaluate(sweep_config, str(tmp_path))


def test_swept_learning_rate_differs_per_member_in_one_program(sweep_config, tmp_path):
    sweep_config.num_seeds = 2
    sweep_config.optimizer.schedule = "linear"  # the logged rate is peak x shape(step)
    sweep_config.sweep.optimizer.learning_rate = (0.01, 0.1)
    final = train.train_and_evaluate(sweep_config, str(tmp_path / "sweep"))
    for peak in (0.01, 0.1):
        for seed in (0, 1):
            run = tmp_path / "sweep" / f"learning_rate={peak}" / f"seed={seed}"
            rates = read_scalars(run, "train/learning_rate")
            # step 100's metrics describe update 100, made at rate peak * (1 - 99/200)
            assert rates[100] == pytest.approx(peak * (1 - 99 / 200), rel=1e-5)
    # a member is the single run with that learning rate and seed
    sweep_config.sweep.optimizer.learning_rate = None
    sweep_config.num_seeds, sweep_config.seed = 1, 1
    sweep_config.optimizer.learning_rate = 0.1
    alone = train.train_and_evaluate(sweep_config, str(tmp_path / "alone"))
    for tag in ("train/loss", "eval/loss", "train/learning_rate"):
        member = final[f"learning_rate=0.1/seed=1/{tag}"]
        np.testing.assert_allclose(member, alone[tag], rtol=1e-4, atol=1e-6)
    # every member is a row in HPARAMS, with its own learning rate
    events = read_events(tmp_path / "sweep" / "learning_rate=0.01" / "seed=1")
    content = events.SummaryMetadata("_hparams_/session_start_info").plugin_data.content
    hparams = hparams_metadata.parse_session_start_info_plugin_data(content).hparams
    assert hparams["optimizer.learning_rate"].number_value == pytest.approx(0.01)
    # HPARAMS: a member is a session of its point's row (its trial), seeds grouped
    start = hparams_metadata.parse_session_start_info_plugin_data(content)
    assert start.group_name == "sweep/learning_rate=0.01"  # as TensorBoard names its runs
    assert "seed" not in hparams and "log_every" not in hparams


def test_structural_sweep_runs_a_program_per_value_and_tabulates(sweep_config, tmp_path, capsys):
    sweep_config.num_steps = 100
    sweep_config.sweep.model.activation = "(relu, tanh)"  # as the command line gives it
    sweep_config.sweep.optimizer.learning_rate = (0.05,)
    sweep_config.best_metric = "train/accuracy"
    final = train.train_and_evaluate(sweep_config, str(tmp_path))
    names = ["activation=relu,learning_rate=0.05", "activation=tanh,learning_rate=0.05"]
    printed = capsys.readouterr().out
    assert printed.count("compiled in") == 2  # one program per activation
    # one seed per point: each point's values, not a spread over one member
    assert "step 100  activation=tanh,learning_rate=0.05  loss 0." in printed
    assert "median" not in printed.split("| point")[0] and "solved 0/1" not in printed
    assert "| point (one seed) |" in printed and "| std |" not in printed
    assert "(best): the highest train/accuracy\n" in printed  # by the metric asked for
    for name in names:
        assert f"| {name} " in printed  # (the best one marked)
        row = next(line for line in printed.splitlines() if line.startswith(f"| {name}"))
        assert row.split(" | ")[5] in ("yes", "no")  # solved, for one seed
        assert (
            read_scalars(tmp_path / name / "aggregate", "train/loss/mean")[100]
            == (final[f"{name}/aggregate/train/loss/mean"])
        )
    # each program its own checkpoints
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["activation=relu", "activation=tanh"]
    results = read_events(tmp_path / "aggregate").Tensors("results")
    assert b"activation=tanh,learning_rate=0.05" in results[0].tensor_proto.string_val[0]


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("optimizer.learning_rate", (), "sweep.optimizer.learning_rate is empty"),
        ("optimizer.learning_rate", 0.1, "must be a tuple of values"),
        ("optimizer.learning_rate", ("fast",), "'fast' does not fit the field"),
        ("optimizer.momentum", (0.5, 0.9), "optimizer 'adam' does not use momentum"),
        ("model.activation", ("relu", "relux"), "unknown activation 'relux'"),
        ("optimizer.lr", (0.1,), "the config has no field 'optimizer.lr'"),
    ],
)
def test_bad_sweep_specs_are_clear_errors(sweep_config, tmp_path, key, value, message):
    section, name = key.split(".")
    sweep_config.sweep[section][name] = value  # a Python config file may add any key
    with pytest.raises(train.UserError, match=message):
        train.check_config(sweep_config)
    assert not list(tmp_path.iterdir())


def test_cnn_sweep_members_equal_single_runs(tmp_path):
    """On CPU a convolutional sweep unrolls its members in each step: same numbers."""
    write_mnist(tmp_path / "mnist", n_train=64, n_test=20)
    config = mnist_cnn.get_config()
    config.data.data_dir = str(tmp_path / "mnist")
    config.batch_size, config.num_steps, config.log_every, config.eval_every = 16, 5, 5, 5
    config.num_seeds = 2
    final = train.train_and_evaluate(config, str(tmp_path / "sweep"))
    config.num_seeds, config.seed = 1, 1
    alone = train.train_and_evaluate(config, str(tmp_path / "alone"))
    for tag in ("train/loss", "eval/loss", "eval/accuracy"):
        np.testing.assert_allclose(final[f"seed=1/{tag}"], alone[tag], rtol=1e-4)
    assert "aggregate/solved" not in final  # minibatch accuracy says nothing of the whole set


def test_a_sweep_draws_each_final_metric_against_the_swept_rate(sweep_config, tmp_path):
    """views/sweep/<metric>_vs_learning_rate: medians over seeds, the best circled."""
    from dashboards import sweep_charts
    from training import sweeps

    sweep_config.num_seeds = 2
    rates = (0.001, 0.01, 0.05, 0.5)
    sweep_config.sweep.optimizer.learning_rate = rates
    final = train.train_and_evaluate(sweep_config, str(tmp_path))
    tags = set(read_events(tmp_path / "aggregate").Tags()["tensors"])
    for metric in ("train_loss", "eval_loss", "train_accuracy", "eval_accuracy"):
        assert f"views/sweep/{metric}_vs_learning_rate" in tags
    medians = [np.median([final[f"learning_rate={r}/seed={s}/eval/loss"] for s in (0, 1)])
               for r in rates]  # fmt: skip
    best = rates[int(np.argmin(medians))]
    results = read_events(tmp_path / "aggregate").Tensors("results")[0]
    assert f"| learning_rate={best} (best) |" in results.tensor_proto.string_val[0].decode()
    # The circle around the best: where a log axis from 0.001 to 0.5 puts it.
    groups, spec = sweeps.groups(sweep_config), sweeps.sweep_spec(sweep_config)
    lines = sweep_charts.curves("optimizer.learning_rate", "eval/loss", groups, final, set(), spec)
    np.testing.assert_allclose(lines[""][1], medians)
    picture = read_image(tmp_path / "aggregate", "views/sweep/eval_loss_vs_learning_rate")
    red = np.all(picture == [214, 39, 40], axis=-1)
    columns = np.flatnonzero(red.any(axis=0))
    left, width = 56, picture.shape[1] - 56 - 12
    expected = left + np.log10(best / 0.001) / np.log10(0.5 / 0.001) * width
    assert abs(np.median(columns) - expected) < 10, (np.median(columns), expected)


def test_a_sweep_above_max_member_runs_writes_only_its_aggregates(sweep_config, tmp_path, capsys):
    """9 members > max_member_runs 4: no run per member, and the console says
    so; the aggregates, the table with its best point, the sweep charts and
    the returned summary are those of the sweep that wrote them all."""
    sweep_config.num_seeds = 3
    sweep_config.sweep.optimizer.learning_rate = (0.01, 0.1, 2.0)
    every_run = train.train_and_evaluate(sweep_config, str(tmp_path / "all"))
    assert "not a run per member" not in capsys.readouterr().out
    sweep_config.max_member_runs = 4
    final = train.train_and_evaluate(sweep_config, str(tmp_path / "few"))
    said = capsys.readouterr().out
    assert said.count("9 members: each point's aggregate run is written, not a run per member "
                      "(more than max_member_runs=4)") == 1  # fmt: skip
    assert not list((tmp_path / "few").glob("**/seed=*"))
    tables = [read_events(tmp_path / run / "aggregate").Tensors("results")[0] for run in
              ("all", "few")]  # fmt: skip
    tables = [t.tensor_proto.string_val[0].decode() for t in tables]
    assert tables[0] == tables[1] and tables[0].count("(best) |") == 1
    for metric in ("train_loss", "eval_loss", "train_accuracy", "eval_accuracy"):
        tag = f"views/sweep/{metric}_vs_learning_rate"
        np.testing.assert_array_equal(
            read_image(tmp_path / "few" / "aggregate", tag),
            read_image(tmp_path / "all" / "aggregate", tag),
        )
    assert final == {k: v for k, v in every_run.items() if "/aggregate/" in k}
    for point in ("learning_rate=0.01", "learning_rate=0.1", "learning_rate=2.0"):
        assert read_scalars(tmp_path / "few" / point / "aggregate", "train/loss/mean") == (
            read_scalars(tmp_path / "all" / point / "aggregate", "train/loss/mean")
        )
        low, solved, high = (
            final[f"{point}/aggregate/solved{s}"] for s in ("/low95", "", "/high95")
        )
        assert low <= solved <= high
    results = read_events(tmp_path / "few" / "aggregate").Tensors("results")[0]
    assert f"| {solved:.3f} ({low:.3f}-{high:.3f}) |" in results.tensor_proto.string_val[0].decode()


@pytest.mark.parametrize("k, n, low, high", [(0, 10, 0.0, 0.2775), (5, 10, 0.2366, 0.7634),
                                             (9500, 10000, 0.9456, 0.9541)])  # fmt: skip
def test_the_solved_rate_has_its_wilson_interval(k, n, low, high):
    from dashboards.writers import wilson_interval

    assert wilson_interval(k, n) == pytest.approx((low, high), abs=1e-4)


def test_members_that_do_not_fit_memory_train_in_parts_to_the_same_numbers(
    sweep_config, tmp_path, monkeypatch, capsys
):
    """With the device's free memory made to hold 2 of 6 members at a time (as
    XLA measured them), the sweep trains in 3 parts of 2, to the same numbers:
    the same bits on CPU, float32 rounding on a GPU (conftest.assert_same_numbers)."""
    from training import memory

    sweep_config.num_seeds = 3
    sweep_config.sweep.optimizer.learning_rate = (0.01, 0.1)
    measured, part_size = [], memory.part_size
    spy = lambda *a, **k: measured.append(a) or part_size(*a, **k)  # noqa: E731
    monkeypatch.setattr(memory, "part_size", spy)
    with same_numbers_precision():
        whole = train.train_and_evaluate(sweep_config, str(tmp_path / "whole"))
    members, need = measured[-1][:2]
    assert members == 6 and need.program > need.state > 0
    room = (need.with_parts_of(6, 2) + need.program / 2) / memory.USABLE  # 2.5 members' programs
    monkeypatch.setattr(memory, "free_bytes", lambda devices: room)
    capsys.readouterr()
    with same_numbers_precision():
        parts = train.train_and_evaluate(sweep_config, str(tmp_path / "parts"))
    assert "6 members in 3 parts of 2 (what memory holds)" in capsys.readouterr().out
    assert_same_numbers(parts, whole)
    monkeypatch.setattr(memory, "free_bytes", lambda d: need.with_parts_of(6, 0) / memory.USABLE)
    message = r"^out of memory: 6 members need .* GiB even 1 at a time"
    with pytest.raises(train.UserError, match=message):
        train.train_and_evaluate(sweep_config, str(tmp_path / "none"))


def test_a_resumed_sweep_trains_in_the_parts_it_trained_in(sweep_config, tmp_path, capsys):
    """Parts of another size can round otherwise (docs/design.md), so a
    resumed run keeps the part size of its checkpoint, even where it could
    now train its members all at once."""
    sweep_config.num_seeds, sweep_config.num_steps = 6, 100
    sweep_config.members_per_program = 2
    train.train_and_evaluate(sweep_config, str(tmp_path))
    assert "6 members in 3 parts of 2 (at most members_per_program=2" in capsys.readouterr().out
    sweep_config.num_steps, sweep_config.members_per_program = 200, 0  # (no cap now)
    train.train_and_evaluate(sweep_config, str(tmp_path))
    said = capsys.readouterr().out
    assert "6 members in 3 parts of 2 (as before the checkpoint), " in said
    assert "resumed at step 100" in said


def test_every_program_of_a_sweep_has_the_same_hparams_columns(sweep_config, tmp_path):
    """A structural sweep is a program per value; TensorBoard takes the columns
    from one run, so each program's runs carry the columns of all points."""
    sweep_config.num_steps = 100
    sweep_config.sweep.data.features = (("x1", "x2"), ("x1^2", "x2^2"))  # one as base.py's
    train.train_and_evaluate(sweep_config, str(tmp_path))
    columns = []
    for point in ("features=x1+x2", "features=x1^2+x2^2"):
        events = read_events(tmp_path / point / "seed=0")
        content = events.SummaryMetadata("_hparams_/experiment").plugin_data.content
        experiment = hparams_metadata.parse_experiment_plugin_data(content)
        columns.append([h.name for h in experiment.hparam_infos])
    assert columns[0] == columns[1] and "data.features" in columns[0]


def test_a_summed_loss_is_not_unstable_for_its_size(tmp_path):
    """`unstable` compares a train batch's loss with its initial one, per
    example: an sse over 500 points is no bigger a loss than over 50."""
    from configs import linear_regression

    config = linear_regression.get_config()
    config.num_seeds, config.num_steps, config.data.num_train = 2, 50, 500
    config.optimizer.learning_rate = 1e-4
    final = train.train_and_evaluate(config, str(tmp_path))
    assert final["aggregate/unstable"] == 0 and final["aggregate/diverged"] == 0

"""Seeds trained together in one vmapped program equal the runs trained alone."""

import numpy as np
import pytest
from conftest import read_events, read_scalars

import train


@pytest.fixture
def sweep_config(xor_config):
    xor_config.num_steps, xor_config.log_every, xor_config.eval_every = 200, 100, 100
    xor_config.model.hidden_sizes = (4,)
    return xor_config


def test_members_equal_single_runs_and_are_separate_runs(sweep_config, tmp_path):
    sweep_config.seed, sweep_config.num_seeds = 5, 3
    summary = train.train_and_evaluate(sweep_config, str(tmp_path / "sweep"))
    assert sorted(summary["members"]) == [5, 6, 7]
    sweep_config.num_seeds = 1
    for seed in (5, 6, 7):
        sweep_config.seed = seed
        alone = train.train_and_evaluate(sweep_config, str(tmp_path / f"alone{seed}"))
        member = summary["members"][seed]
        for tag in ("train/loss", "train/accuracy", "eval/loss", "eval/accuracy"):
            np.testing.assert_allclose(member[tag], alone[tag], rtol=1e-4, atol=1e-6)
        # its own run, with its own hparams row
        run = tmp_path / "sweep" / f"seed={seed}"
        assert read_scalars(run, "train/loss")[200] == pytest.approx(member["train/loss"])
        assert "_hparams_/session_start_info" in read_events(run).Tags()["tensors"]
    losses = [summary["members"][s]["train/loss"] for s in (5, 6, 7)]
    assert summary["train/loss/mean"] == pytest.approx(np.mean(losses))
    assert summary["train/loss/max"] == pytest.approx(max(losses))
    aggregate = tmp_path / "sweep" / "aggregate"
    assert read_scalars(aggregate, "train/loss/mean")[200] == pytest.approx(np.mean(losses))
    solved = read_scalars(aggregate, "solved")
    assert solved[200] == pytest.approx(summary["solved"])
    if summary["solved"]:  # the first log step at which a member reached 100%
        assert summary["steps_to_solve/median"] in (100, 200)


def test_bad_num_seeds(sweep_config, tmp_path):
    sweep_config.num_seeds = 0
    with pytest.raises(train.UserError, match="num_seeds must be >= 1"):
        train.train_and_evaluate(sweep_config, str(tmp_path))

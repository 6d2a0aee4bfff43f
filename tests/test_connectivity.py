"""Linear mode connectivity (training/connectivity.py; probes.connectivity):
the barrier against its definition, the line against the loss at its
points, and a sweep's pairs read back from its event files."""

import jax
import numpy as np
import pytest
from conftest import exact_matmuls, read_image, read_scalars, refused
from flax import nnx

import data
import train
from plumbing.failures import UserError
from training import checkpoints, connectivity, program
from training.checks import check_config


def test_the_barrier_is_the_rise_above_the_chord_between_the_ends():
    alphas = np.linspace(0, 1, 11)
    straight = 2.0 - alphas  # the chord itself: no barrier
    bump = straight + 0.3 * np.sin(np.pi * alphas)  # 0.3 above the chord at a = 0.5
    dip = straight - 0.1 * np.sin(np.pi * alphas)  # below it: still none
    np.testing.assert_allclose(connectivity.barrier(np.stack([straight, bump, dip])),
                               [0.0, 0.3, 0.0], atol=1e-12)  # fmt: skip


def test_a_diverged_member_takes_its_pair_out_not_the_pairing():
    """Seed 1 of 0-5 diverged: (2, 3) and (4, 5) are left, not (0, 2) and
    (3, 4) (a split's pairs are one parent each)."""
    training = np.array([True, False, True, True, True, True])
    pairs = connectivity.seed_pairs(np.arange(6), training)
    np.testing.assert_array_equal(pairs, [[2, 3], [4, 5]])


def test_seeds_pair_two_by_two_and_an_odd_one_is_left_out():
    pairs = connectivity.seed_pairs(np.array([4, 5, 6, 7, 8]))
    np.testing.assert_array_equal(pairs, [[4, 5], [6, 7]])


def members(run_dir, seeds) -> list:
    """The final weights of a sweep's seeds, from its checkpoint."""
    out = []
    for seed in seeds:
        model, config = checkpoints.load_run(str(run_dir / f"seed={seed}"))
        out.append(nnx.split(model, nnx.Param)[1])
    return out, config


def test_a_sweep_measures_its_seed_pairs_lines_and_barriers(xor_config, tmp_path, capsys):
    """6 XOR seeds: pairs (0, 1), (2, 3), (4, 5). The aggregate's barriers
    are those of the loss and error computed at each point of the line from
    the checkpoint's weights on the whole split at once (the probe takes it
    in batches of eval_batch_size); the fraction connected counts the pairs with
    an eval error barrier <= 2%, with its interval; the pictures are drawn."""
    xor_config.num_seeds, xor_config.probes.connectivity = 6, True
    xor_config.probes.connectivity_points = 5
    xor_config.eval_batch_size = 3  # each point of the line in batches: 3, then 1
    with exact_matmuls():
        final = train.train_and_evaluate(xor_config, str(tmp_path))
        params, config = members(tmp_path, range(6))
        dataset = data.load_dataset(config.data)
        _, train_step = program.make_train_step(config, dataset)
        losses, errors = [], []
        for a, b in ((0, 1), (2, 3), (4, 5)):
            on_line = []
            for t in np.linspace(0, 1, 5):
                between = jax.tree.map(lambda p, q, t=t: (1 - t) * p + t * q, params[a], params[b])
                _, parts = train_step.loss(between, (dataset.x_train, dataset.y_train))
                _, eval_parts = train_step.loss(between, (dataset.x_eval, dataset.y_eval))
                wrong = np.mean((np.asarray(eval_parts.outputs)[:, 0] > 0) != dataset.y_eval)
                on_line.append((float(parts.data), wrong))
            loss, error = np.array(on_line).T
            losses.append(connectivity.barrier(loss))
            errors.append(connectivity.barrier(error))
    tag = "aggregate/connectivity/"
    assert final[tag + "train_loss_barrier/median"] == pytest.approx(np.median(losses), rel=1e-5)
    assert final[tag + "train_loss_barrier/max"] == pytest.approx(max(losses), rel=1e-5)
    assert final[tag + "eval_error_barrier/median"] == pytest.approx(np.median(errors))
    connected = sum(e <= 0.02 for e in errors)
    assert final[tag + "connected"] == pytest.approx(connected / 3)
    assert read_scalars(tmp_path / "aggregate", "connectivity/connected") == {
        600: np.float32(connected / 3)
    }
    for picture in ("train_loss", "eval_error", "barriers"):
        assert read_image(tmp_path / "aggregate", f"views/connectivity/{picture}").std() > 0
    printed = capsys.readouterr().out
    assert f"connectivity over 3 seed pairs: {connected} linearly connected, " in printed
    assert "| seed pairs linearly connected (eval error barrier <= 2%) | " in printed
    assert "; connectivity 0." in printed  # its seconds in the done line


def test_connectivity_of_a_single_run_is_one_line(tmp_path):
    line = refused("--config=configs/xor.py", "--config.probes.connectivity=true",
                   workdir=tmp_path / "runs")  # fmt: skip
    assert line == (
        "error: probes.connectivity draws the line between two seeds of a point: it needs "
        "--config.num_seeds=2 or more, got 1"
    )


def test_a_line_needs_its_two_ends(xor_config):
    xor_config.num_seeds, xor_config.probes.connectivity_points = 2, 1
    with pytest.raises(UserError, match=r"^probes.connectivity_points must be >= 2"):
        check_config(xor_config)


def test_split_pairs_are_one_network_until_the_split_step(xor_config, tmp_path):
    """split_step=k: seeds 0 and 1 (2 and 3) start from seed 0's (2's)
    weights and take the same minibatches until step k, different ones
    after. Split at the last step, a pair differs by that one step's
    minibatch; split at 0, a pair shares only its start; other pairs differ
    from the start. With no split, nothing changes (the seeds' own runs)."""
    xor_config.num_seeds, xor_config.batch_size = 4, 2
    xor_config.num_steps, xor_config.checkpoint_every = 20, 20
    runs = {}
    for k in (-1, 0, 19):
        xor_config.split_step = k
        train.train_and_evaluate(xor_config, str(tmp_path / f"split={k}"))
        runs[k] = members(tmp_path / f"split={k}", range(4))[0]

    def apart(a, b):
        pairs = zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
        return max(float(np.abs(x - y).max()) for x, y in pairs)

    late, early, none = runs[19], runs[0], runs[-1]
    assert 0 < apart(late[0], late[1]) < apart(early[0], early[1])
    assert apart(late[0], none[0]) == 0 and apart(late[2], none[2]) == 0  # the parents' runs
    assert apart(early[1], none[1]) > 0  # seed 1 started from seed 0's weights


def test_a_split_needs_pairs_and_minibatches(xor_config):
    xor_config.num_seeds, xor_config.split_step = 3, 5
    with pytest.raises(UserError, match=r"^split_step pairs the seeds .*num_seeds must be even"):
        check_config(xor_config)
    xor_config.num_seeds = 2
    with pytest.raises(UserError, match=r"^split_step gives the two halves .*batch_size=0"):
        check_config(xor_config)
    xor_config.batch_size, xor_config.split_step = 2, 600
    with pytest.raises(UserError, match=r"^split_step must be -1 \(no split\) or a step from 0"):
        check_config(xor_config)


def test_a_split_step_sweep_charts_the_fraction_connected_against_k(xor_config, tmp_path):
    """sweep.split_step: views/sweep/connectivity_connected_vs_split_step is
    each k's fraction of pairs connected with its 95% interval as the band,
    read from the points' aggregates; the barriers' charts are over seed
    pairs, no point circled as best."""
    from dashboards import sweep_charts
    from training import sweeps

    xor_config.num_seeds, xor_config.batch_size = 4, 2
    xor_config.num_steps, xor_config.log_every, xor_config.eval_every = 40, 20, 20
    xor_config.probes.connectivity, xor_config.probes.connectivity_points = True, 3
    xor_config.sweep.split_step = (0, 39)
    final = train.train_and_evaluate(xor_config, str(tmp_path))
    groups, spec = sweeps.groups(xor_config), sweeps.sweep_spec(xor_config)
    assert "connectivity/connected" in sweep_charts.metrics(final)
    lines = sweep_charts.curves("split_step", "connectivity/connected", groups, final, set(), spec)
    x, fraction, low, high = lines[""]
    np.testing.assert_array_equal(x, [0, 39])
    for i, k in enumerate((0, 39)):
        tag = f"split_step={k}/aggregate/connectivity/connected"
        assert (fraction[i], low[i], high[i]) == (final[tag], final[tag + "/low95"],
                                                  final[tag + "/high95"])  # fmt: skip
        assert fraction[i] in (0.0, 0.5, 1.0)  # of 2 pairs
    picture = read_image(tmp_path / "aggregate", "views/sweep/connectivity_connected_vs_split_step")
    assert picture.std() > 0
    barrier = read_image(tmp_path / "aggregate",
                         "views/sweep/connectivity_eval_error_barrier_vs_split_step")  # fmt: skip
    assert not np.all(barrier == [214, 39, 40], axis=-1).any()  # no best circled

"""Checkpoints: resume bit for bit, refuse a changed config, keep the newest."""

import os
import shutil

import pytest
from conftest import read_events
from tensorboard.compat.proto import graph_pb2
from tensorboard.util import tensor_util

import train
from dashboards import summaries
from plumbing.failures import UserError
from training import checkpoints


def all_summaries(run_dir):
    """{tag: [(step, value bytes), ...]} of every summary of a run but its provenance."""
    events = read_events(run_dir)

    def value(tag, event):
        array = tensor_util.make_ndarray(event.tensor_proto)
        if tag == "__run_graph__":  # a GraphDef: its map fields have no fixed order
            graph = graph_pb2.GraphDef.FromString(array.ravel()[0])
            return graph.SerializeToString(deterministic=True)
        return repr(array.tolist()) if array.dtype == object else array.tobytes()

    def values(tag):
        return [(e.step, value(tag, e)) for e in events.Tensors(tag)]

    # "run" (TEXT) records the command line, which names each run's own --workdir.
    return {tag: values(tag) for tag in events.Tags()["tensors"] if tag != "run"}


def test_config_differences_ignore_step_counts():
    saved = {"num_steps": 10, "model": {"hidden_sizes": [4], "activation": "relu"}}
    same = {"num_steps": 20, "model": {"hidden_sizes": (4,), "activation": "relu"}}
    assert checkpoints.config_differences(saved, same) == []
    other = {"num_steps": 10, "model": {"hidden_sizes": (4,), "activation": "tanh"}}
    assert checkpoints.config_differences(saved, other) == ["model.activation: 'relu' -> 'tanh'"]


def test_a_field_newer_than_the_run_at_its_default_is_no_difference():
    """A run saved before a field existed resumes while the field keeps its
    default (what that run did); set to anything else, it is a change."""
    saved = {"num_steps": 10, "probes": {"landscape": False}}
    probes = {"landscape": False, "landscape_directions": "random"}
    newer = {"num_steps": 10, "split_step": -1, "probes": probes}
    assert checkpoints.config_differences(saved, newer) == []
    newer["probes"]["landscape_directions"] = "path"
    assert checkpoints.config_differences(saved, newer) == [
        "probes.landscape_directions: '<missing>' -> 'path'"
    ]


# Dropout's masks come from the seed and the step; the sharpness picture and
# the landscape's path at the end draw every log step's values, the first
# part's from the checkpoint.
@pytest.mark.parametrize("dropout, sharpness", [(0.0, False), (0.5, True)])
def test_resumed_run_equals_uninterrupted_run(xor_config, tmp_path, dropout, sharpness):
    xor_config.checkpoint_every = 200
    xor_config.model.dropout = dropout
    xor_config.probes.sharpness = xor_config.probes.landscape = sharpness
    whole = train.train_and_evaluate(xor_config, str(tmp_path / "whole"))
    # The same run in two parts: 400 steps, then on to 600 from the checkpoint.
    xor_config.num_steps = 400
    train.train_and_evaluate(xor_config, str(tmp_path / "parts"))
    xor_config.num_steps = 600
    resumed = train.train_and_evaluate(xor_config, str(tmp_path / "parts"))
    assert resumed == whole
    parts, whole_run = all_summaries(tmp_path / "parts"), all_summaries(tmp_path / "whole")
    del parts["config"], whole_run["config"]  # TEXT: their num_steps differ
    at_the_end = ["eval/loss", "eval/accuracy", "eval/classification_error"]
    at_the_end += ["views/decision_boundary/train", "views/network/train"]
    if sharpness:
        at_the_end += ["views/sharpness_vs_limit", "views/landscape/line", "views/landscape/plane"]
    for tag in at_the_end:
        parts[tag].remove(next(v for v in parts[tag] if v[0] == 400))  # the 1st part's end
    assert parts == whole_run


def test_finished_run_is_not_trained_again(xor_config, tmp_path):
    first = train.train_and_evaluate(xor_config, str(tmp_path))
    files = summaries.event_files(tmp_path)
    assert train.train_and_evaluate(xor_config, str(tmp_path)) == first
    assert summaries.event_files(tmp_path) == files


def test_changed_config_is_refused(xor_config, tmp_path):
    xor_config.num_steps = 200
    train.train_and_evaluate(xor_config, str(tmp_path))
    xor_config.model.activation = "tanh"
    with pytest.raises(UserError, match=r"another config \(model.activation: 'relu' -> 'tanh'\)"):
        train.train_and_evaluate(xor_config, str(tmp_path))


def test_keeps_the_newest_checkpoints(xor_config, tmp_path):
    xor_config.checkpoint_every = 100
    xor_config.keep_checkpoints = 2
    train.train_and_evaluate(xor_config, str(tmp_path))
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["500", "600"]


def test_divergence_keeps_the_last_good_checkpoint(xor_config, tmp_path):
    xor_config.optimizer.name = "sgd"
    xor_config.optimizer.learning_rate = 1e9  # overflows at the 3rd update
    xor_config.checkpoint_every = 1
    with pytest.raises(train.Diverged, match="step 3"):
        train.train_and_evaluate(xor_config, str(tmp_path))
    assert checkpoints.Checkpointer(str(tmp_path), 3).latest_step() == 2


def test_cut_events_after(xor_config, tmp_path):
    train.train_and_evaluate(xor_config, str(tmp_path))
    assert summaries.cut_events_after(str(tmp_path), 300) > 0
    steps = {step for values in all_summaries(tmp_path).values() for step, _ in values}
    assert steps == {0, 200, 300}


def test_removed_event_file_is_an_error_not_a_silent_loss(tmp_path):
    writer = summaries.SummaryWriter(str(tmp_path / "run"), auto_flush=False)
    writer.scalar("a", 1.0, 1)
    writer.flush()
    for path in summaries.event_files(tmp_path / "run"):
        os.remove(path)
    writer.scalar("a", 2.0, 2)
    with pytest.raises(UserError, match="disappeared"):
        writer.close()


def test_damaged_checkpoint_is_a_clear_error(xor_config, tmp_path):
    xor_config.num_steps = 200
    train.train_and_evaluate(xor_config, str(tmp_path))
    (tmp_path / "checkpoints" / "200" / "config" / "metadata").write_text("{not json")
    with pytest.raises(UserError, match="cannot read the checkpoints in .*--new_run"):
        train.train_and_evaluate(xor_config, str(tmp_path))


def test_restart_without_checkpoint_replaces_the_old_events(xor_config, tmp_path):
    xor_config.num_steps = 200
    train.train_and_evaluate(xor_config, str(tmp_path))
    old = summaries.event_files(tmp_path)
    checkpoints_dir = tmp_path / "checkpoints"
    for step in os.listdir(checkpoints_dir):  # as if killed before its first checkpoint
        shutil.rmtree(checkpoints_dir / step)
    train.train_and_evaluate(xor_config, str(tmp_path))
    new = summaries.event_files(tmp_path)
    assert len(new) == 1 and new != old
    xor_config.seed = 3
    for step in os.listdir(checkpoints_dir):
        shutil.rmtree(checkpoints_dir / step)
    with pytest.raises(UserError, match=r"another config \(seed: 0 -> 3\)"):
        train.train_and_evaluate(xor_config, str(tmp_path))


def test_new_num_steps_refused_when_the_schedule_depends_on_it(xor_config, tmp_path):
    xor_config.optimizer.schedule = "cosine"
    xor_config.num_steps = 200
    train.train_and_evaluate(xor_config, str(tmp_path))
    xor_config.num_steps = 400
    with pytest.raises(UserError, match="num_steps: 200 -> 400, which changes the cosine"):
        train.train_and_evaluate(xor_config, str(tmp_path))


def test_a_resumed_runs_done_line_counts_this_process_and_the_run(xor_config, tmp_path, capsys):
    xor_config.num_steps = 200
    train.train_and_evaluate(xor_config, str(tmp_path))
    assert "done: 200 steps in " in capsys.readouterr().out
    xor_config.num_steps = 300
    train.train_and_evaluate(xor_config, str(tmp_path))
    assert "done: 100 steps (resumed at step 200; 300 in the run) in " in capsys.readouterr().out


def test_minibatch_run_resumes_with_the_same_batches(tmp_path):
    from configs import playground

    config = playground.get_config("circles")
    config.batch_size, config.num_steps = 64, 30  # 400 points: 6 steps per epoch
    config.log_every = config.eval_every = config.picture_every = config.checkpoint_every = 10
    whole = train.train_and_evaluate(config, str(tmp_path / "whole"))
    config.num_steps = 13  # stops mid-epoch
    train.train_and_evaluate(config, str(tmp_path / "parts"))
    config.num_steps = 30
    assert train.train_and_evaluate(config, str(tmp_path / "parts")) == whole

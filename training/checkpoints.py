"""Checkpoints of a run, with orbax: the train state, the config, the metrics.

A checkpoint lives in `<run_dir>/checkpoints/<step>/` and holds everything
needed to continue the run bit for bit: the `TrainState` (step, parameters,
optimizer state), the resolved config, and the latest metrics. There is no
separate RNG or data-order state to store: every random draw is derived from
`config.seed` and the step.

orbax writes each checkpoint into a temporary directory and renames it when
complete, so a crash mid-write never leaves a checkpoint that loads wrong.
Importing orbax takes most of a second; `preload()` starts it early.

`load_run(run_dir)` gives back the network a run trained, with its latest
checkpoint's weights, to use on new inputs.
"""

import json
import os
from typing import Any, NamedTuple

import jax
import ml_collections
from flax import nnx

import data
from dashboards import summaries
from plumbing import background, failures
from plumbing.failures import UserError
from training import program, sweeps

# Fields that may change when a run is resumed: they say how long to train
# and how often to report, not what is trained.
RESUMABLE_CHANGES = (
    "num_steps",
    "log_every",
    "eval_every",
    "picture_every",
    "checkpoint_every",
    "probes.sharpness_every",
    "probes.spectrum_every",
    "probes.gradient_noise_every",
    "keep_checkpoints",
    "layer_stats",
    "embedding_examples",
    "eval_batch_size",
    "members_per_program",
)


def _import_orbax():
    import orbax.checkpoint

    return orbax.checkpoint


def preload() -> None:
    """Starts importing orbax in the background (idempotent)."""
    background.start(_import_orbax)


def _ocp():
    return background.start(_import_orbax).result()


def config_differences(saved: dict, current: dict, prefix: str = "", defaults=None) -> list[str]:
    """'key: saved -> current' for each field that differs (tuples == lists).
    A field the saved config lacks (a run from before it existed) at its
    default (configs/base.py) is no difference: that run trained as it says."""
    if defaults is None:
        from configs import base

        defaults = json.loads(json.dumps(base.get_config().to_dict()))
    current = json.loads(json.dumps(current))  # tuples become lists, as saved
    changes = []
    for key in sorted(set(saved) | set(current)):
        name = prefix + key
        old, new = saved.get(key, "<missing>"), current.get(key, "<missing>")
        default = defaults.get(key, "<missing>") if isinstance(defaults, dict) else "<missing>"
        if isinstance(old, dict) and isinstance(new, dict):
            changes += config_differences(old, new, name + ".", default)
        elif old == "<missing>" and new == default:
            continue
        elif old != new and name not in RESUMABLE_CHANGES:
            changes.append(f"{name}: {old!r} -> {new!r}")
    return changes


class Checkpointer:
    """Saves and restores one program's checkpoints, keeping the newest `keep`.

    In `RUN_DIR/checkpoints`, or `RUN_DIR/checkpoints/GROUP` for each program
    of a sweep over structural fields (training.sweeps.groups).
    """

    def __init__(self, run_dir: str, keep: int, group: str = "", writes: bool = True):
        self.directory = os.path.abspath(os.path.join(run_dir, "checkpoints", group))
        self._keep = keep
        self._writes = writes  # False: only reads, and leaves a running run's files alone
        self._manager = None

    def _open(self):
        if self._manager is None:
            ocp = _ocp()
            # Synchronous: a failed write surfaces in `save`, at its step.
            options = ocp.CheckpointManagerOptions(
                max_to_keep=self._keep,
                create=self._writes,
                cleanup_tmp_directories=self._writes,
                enable_async_checkpointing=False,
            )
            self._manager = ocp.CheckpointManager(self.directory, options=options)
        return self._manager

    def latest_step(self) -> int | None:
        """The newest complete checkpoint's step; None if there is none."""
        if not os.path.isdir(self.directory):
            return None  # no need to import orbax to know that
        with self._reading():
            return self._open().latest_step()

    def _reading(self):
        return failures.reported(
            f"cannot read the checkpoints in {self.directory}",
            " (remove the damaged checkpoint's directory, or pass --new_run to "
            "start a new run beside this one)",
        )

    def save(self, step: int, state: Any, config: dict, metrics: dict) -> None:
        """Writes checkpoint `step`; returns when it is complete on disk."""
        ocp = _ocp()
        args = ocp.args.Composite(
            state=ocp.args.StandardSave(state),
            config=ocp.args.JsonSave(config),
            metrics=ocp.args.JsonSave(metrics),
        )
        with failures.reported(f"cannot write a checkpoint to {self.directory}"):
            self._open().save(step, args=args, force=True)

    def restore(self, abstract_state: Any) -> tuple[Any, dict, dict]:
        """(state, config, metrics) of the latest checkpoint.

        Args:
          abstract_state: the state's structure, e.g. `jax.eval_shape` of a
            fresh one; the restored arrays take its shapes and dtypes.
        """
        ocp = _ocp()
        manager = self._open()
        args = ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract_state),
            config=ocp.args.JsonRestore(),
            metrics=ocp.args.JsonRestore(),
        )
        with self._reading():
            restored = manager.restore(manager.latest_step(), args=args)
        return restored.state, restored.config, restored.metrics

    def restore_params(self, abstract_params: Any) -> Any:
        """Only the parameters of the latest checkpoint, on the default device.

        Args:
          abstract_params: their structure with the members axis, e.g. the
            `jax.ShapeDtypeStruct`s of a model's `nnx.Param` state, each
            shaped `(members, ...)`.
        """
        ocp = _ocp()
        manager = self._open()
        device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
        like = {"params": jax.tree.map(
            lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=device), abstract_params
        )}  # fmt: skip
        restore = ocp.args.PyTreeRestore(
            like, ocp.checkpoint_utils.construct_restore_args(like), partial_restore=True
        )  # the optimizer's state stays on disk
        args = ocp.args.Composite(state=restore)
        with self._reading():
            return manager.restore(manager.latest_step(), args=args).state["params"]

    def saved_config(self) -> dict:
        """The config stored with the latest checkpoint."""
        ocp = _ocp()
        manager = self._open()
        args = ocp.args.Composite(config=ocp.args.JsonRestore())
        with self._reading():
            return manager.restore(manager.latest_step(), args=args).config

    def saved_part(self) -> int | None:
        """How many members one compiled call trained (program.part) up to
        the latest checkpoint; None without one (or from before 2026-12-05)."""
        if self.latest_step() is None:
            return None
        ocp = _ocp()
        manager = self._open()
        args = ocp.args.Composite(metrics=ocp.args.JsonRestore())
        with self._reading():
            return manager.restore(manager.latest_step(), args=args).metrics.get("part")

    def close(self) -> None:
        if self._manager is not None:
            self._manager.close()
            self._manager = None


def resume_step(checkpointer: Checkpointer, config, run_dir: str) -> int:
    """The step to start from: the latest checkpoint's, or 0.

    Refuses (UserError) a run whose config differs from `config` in anything
    but step counts, and a new `num_steps` where the learning-rate schedule
    depends on it; and a directory with event files not written by this
    program.
    """
    step = checkpointer.latest_step()
    saved_path = os.path.join(run_dir, "config.json")
    if step is None:
        if not os.path.exists(saved_path):
            if summaries.event_files(run_dir):
                raise UserError(
                    f"{run_dir} holds event files but no config.json: not a run of this "
                    "program. Pass --new_run to start a run beside it, or another --workdir."
                )
            return 0
        with open(saved_path) as f:
            saved = json.load(f)
    else:
        saved = checkpointer.saved_config()
    changes = config_differences(saved, config.to_dict())
    if step and saved["num_steps"] != config.num_steps and config.optimizer.schedule != "constant":
        changes.append(
            f"num_steps: {saved['num_steps']} -> {config.num_steps}, which changes the "
            f"{config.optimizer.schedule} learning-rate schedule"
        )
    if changes:
        raise UserError(
            f"{run_dir} holds a run with another config ({'; '.join(changes)}). "
            "Resuming would mix two runs: restore the config, or pass --new_run "
            "to start a new run beside it."
        )
    return step or 0


class TrainedRun(NamedTuple):
    """A trained network, as `load_run` gives it back."""

    model: nnx.Module  # with its latest checkpoint's weights; model(x): a classifier's logits
    config: ml_collections.ConfigDict  # its own: its seed and swept values, no sweep


def load_run(path: str) -> TrainedRun:
    """The network the run in `path` trained, with its latest checkpoint's
    weights, to use on new inputs:

        model, config = load_run("runs/xor/default")
        logits = model(jnp.array([[0.1, 0.9], [0.9, 0.9]]))  # (2, 1)
        nets.predictions(logits)     # the classes: [1, 0]
        nets.probabilities(logits)   # P(class 1), as the sigmoid of the logit

    `path` is a run's directory, as train.py names it, or a sweep member's
    (`RUN/seed=1`, `RUN/learning_rate=0.1/seed=1`): a sweep keeps its
    members' weights in one checkpoint at its root, and this takes that
    member's out of it (also when its TensorBoard folder was not written,
    above `max_member_runs`). The model takes what `nets.apply` gives it:
    for images, `model(nets.to_inputs(x))` scales their uint8 pixels. It
    builds the model from the run's config and dataset (the inputs' shape,
    the classes), so a CSV run needs its file where it was.

    Raises UserError, in one line, for a path that is not a run, a sweep
    rather than one of its members, or a run with no checkpoint yet.
    """
    run_dir, name = _run_of(path)
    config = ml_collections.ConfigDict(
        sweeps.read_config_json(os.path.join(run_dir, "config.json"))
    )
    group, m = _member(config, run_dir, name)
    dataset = data.load_dataset(group.config.data)  # the inputs' shape and how many outputs
    new_model, _ = program.make_train_step(group.config, dataset)
    graphdef, params = nnx.split(nnx.eval_shape(lambda: new_model(nnx.Rngs(0))), nnx.Param)
    members = len(group.members)  # every leaf of the checkpoint has this leading axis
    params = jax.tree.map(lambda a: jax.ShapeDtypeStruct((members, *a.shape), a.dtype), params)
    checkpointer = Checkpointer(run_dir, keep=1, group=group.name, writes=False)
    try:
        if checkpointer.latest_step() is None:
            raise UserError(
                f"{run_dir} holds no checkpoint yet: a run saves one every "
                f"checkpoint_every={group.config.checkpoint_every} steps and at its end"
            )
        params = checkpointer.restore_params(params)
    finally:
        checkpointer.close()
    member = jax.tree.map(lambda a: a[m], params)
    return TrainedRun(nnx.merge(graphdef, member), group.members[m].config)


def _run_of(path: str) -> tuple[str, str]:
    """(the run's directory, the member's name in it: '' for the run itself).
    A member is at most two folders below its run: POINT/seed=K."""
    path = os.path.normpath(path)
    run_dir, name = path, ""
    for _ in range(3):
        if os.path.isfile(os.path.join(run_dir, "config.json")):
            return run_dir, name
        run_dir, name = os.path.dirname(run_dir), os.path.join(os.path.basename(run_dir), name)
    if not os.path.exists(path):
        raise UserError(f"{path} does not exist: give a run's directory, e.g. runs/xor/default")
    raise UserError(
        f"{path} is not a trained run: no config.json in it or in the two folders above "
        "(gates runs train no network; give a run's directory, e.g. runs/xor/default)"
    )


def _member(config, run_dir: str, name: str) -> tuple[sweeps.Group, int]:
    """The group whose checkpoint holds member `name`, and its index there."""
    name = name.rstrip(os.sep)
    groups = sweeps.groups(config)
    for group in groups:
        for m, member in enumerate(group.members):
            if member.name == name:
                return group, m
    example = os.path.join(run_dir, groups[0].members[0].name)
    if not name:
        members = sum(len(g.members) for g in groups)
        raise UserError(
            f"{run_dir} is a sweep of {members} networks: load one of them, e.g. {example}"
        )
    raise UserError(f"{run_dir} has no network {name!r}: load one of its members, e.g. {example}")

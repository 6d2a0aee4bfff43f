"""Checkpoints of a run, with orbax: the train state, the config, the metrics.

A checkpoint lives in `<run_dir>/checkpoints/<step>/` and holds everything
needed to continue the run bit for bit: the `TrainState` (step, parameters,
optimizer state), the resolved config, and the latest metrics. There is no
separate RNG or data-order state to store: every random draw is derived from
`config.seed` and the step.

orbax writes each checkpoint into a temporary directory and renames it when
complete, so a crash mid-write never leaves a checkpoint that loads wrong.
Importing orbax takes most of a second; `preload()` starts it early.
"""

import json
import os
from typing import Any

from dashboards import summaries
from plumbing import background, failures
from plumbing.failures import UserError

# Fields that may change when a run is resumed: they say how long to train
# and how often to report, not what is trained.
RESUMABLE_CHANGES = (
    "num_steps",
    "log_every",
    "eval_every",
    "picture_every",
    "checkpoint_every",
    "probes.sharpness_every",
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


def config_differences(saved: dict, current: dict, prefix: str = "") -> list[str]:
    """'key: saved -> current' for each field that differs (tuples == lists)."""
    current = json.loads(json.dumps(current))  # tuples become lists, as saved
    changes = []
    for key in sorted(set(saved) | set(current)):
        name = prefix + key
        old, new = saved.get(key, "<missing>"), current.get(key, "<missing>")
        if isinstance(old, dict) and isinstance(new, dict):
            changes += config_differences(old, new, name + ".")
        elif old != new and name not in RESUMABLE_CHANGES:
            changes.append(f"{name}: {old!r} -> {new!r}")
    return changes


class Checkpointer:
    """Saves and restores one program's checkpoints, keeping the newest `keep`.

    In `RUN_DIR/checkpoints`, or `RUN_DIR/checkpoints/GROUP` for each program
    of a sweep over structural fields (training.sweeps.groups).
    """

    def __init__(self, run_dir: str, keep: int, group: str = ""):
        self.directory = os.path.abspath(os.path.join(run_dir, "checkpoints", group))
        self._keep = keep
        self._manager = None

    def _open(self):
        if self._manager is None:
            ocp = _ocp()
            # Synchronous: a failed write surfaces in `save`, at its step.
            options = ocp.CheckpointManagerOptions(
                max_to_keep=self._keep,
                create=True,
                cleanup_tmp_directories=True,
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

    def saved_config(self) -> dict:
        """The config stored with the latest checkpoint."""
        ocp = _ocp()
        manager = self._open()
        args = ocp.args.Composite(config=ocp.args.JsonRestore())
        with self._reading():
            return manager.restore(manager.latest_step(), args=args).config

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

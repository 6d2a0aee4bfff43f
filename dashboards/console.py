"""Every line a run prints, formatted in one place.

    xor/default: 65 parameters, compiled in 2.57 s
    step  100  loss 0.0014  accuracy 1.000  3,609 steps/s
    step  100  learning_rate=0.1  loss median 0.0123 (min 0.0101, max 0.0150)  solved 8/8
    done: 2000 steps in 0.31 s (pictures and probes 0.18 s); train loss 0.0000 ...

`say(line)` prints; only process 0 of a multi-host run does, and a closed
stdout (`| head`) never stops training.
"""

import os

import jax
import numpy as np


def say(line: str) -> None:
    """Prints a progress line (process 0 only; a closed stdout is ignored)."""
    if jax.process_index() != 0:
        return
    try:
        print(line, flush=True)
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), 1)


def headline(metrics: dict[str, float]) -> str:
    """'loss 0.0123  accuracy 1.000' (mse instead of accuracy for a regression)."""
    if "accuracy" in metrics:
        return f"loss {metrics['loss']:.4f}  accuracy {metrics['accuracy']:.3f}"
    return f"loss {metrics['loss']:.4f}  mse {metrics['mse']:.4f}"


def spread(stats: dict[str, float], solved: tuple[int, int] | None, unstable: int = 0) -> str:
    """One point's members in a line, from its statistics ('train/loss/median',
    ...: Writers.scalars): the loss's median and range, the accuracy's
    median, how many solved (`solved`: of how many), how many are unstable
    (a loss above their first)."""
    loss = {stat: stats[f"train/loss/{stat}"] for stat in ("median", "min", "max")}
    text = f"loss median {loss['median']:.4f} (min {loss['min']:.4f}, max {loss['max']:.4f})"
    if "train/accuracy/median" in stats:
        text += f"  accuracy median {stats['train/accuracy/median']:.3f}"
        if solved is not None:
            text += f"  solved {solved[0]}/{solved[1]}"
    return text + (f"  unstable {unstable}" if unstable else "")


def sharpness(point: str, value: float, limit: float | None, name: str) -> str:
    """'learning_rate=1.0  sharpness 2.07 (2/eta 2)': the top Hessian
    eigenvalue beside the limit gradient descent stays stable under (`name`)."""
    where = f"{point}  " if point else ""
    beside = "" if limit is None else f" ({name} {limit:.3g})"
    return f"{where}sharpness {value:.3g}{beside}"


def spectrum(point: str, top: np.ndarray, trace: float, error: float) -> str:
    """'learning_rate=1.0  hessian top 2.07, 0.401, 0.118  trace 3.2 ± 0.31': the
    Hessian's largest eigenvalues, largest first, and its trace with the
    standard error of Hutchinson's estimate."""
    where = f"{point}  " if point else ""
    values = ", ".join(f"{v:.3g}" for v in top)
    return f"{where}hessian top {values}  trace {trace:.3g} ± {error:.2g}"


def gradient_noise(point: str, b_simple: float, trace: float, signal: float) -> str:
    """'learning_rate=1.0  noise scale 12.3 (trace 0.41, |G|^2 0.033)': the
    simple noise scale tr(Sigma) / |G|^2, about the batch size beyond which
    larger batches stop paying off, and its two parts."""
    where = f"{point}  " if point else ""
    scale = f"{b_simple:.3g}" if np.isfinite(b_simple) else "not measured (no signal above noise)"
    return f"{where}noise scale {scale} (trace {trace:.3g}, |G|^2 {signal:.3g})"


def connectivity(point: str, values: dict[str, float], pairs: int) -> str:
    """'lr=0.1  connectivity: 23 of 50 seed pairs linearly connected, 0.46
    (0.33-0.60); median barriers: train loss 0.12, eval error 0.031'."""
    where = f"{point}  " if point else ""
    text = f"{where}connectivity over {pairs} seed pairs: "
    if "connectivity/connected" in values:
        share = values["connectivity/connected"]
        low, high = values["connectivity/connected/low95"], values["connectivity/connected/high95"]
        text += f"{round(share * pairs)} linearly connected, {share:.2f} ({low:.2f}-{high:.2f}); "
    text += f"median barriers: train loss {values['connectivity/train_loss_barrier/median']:.3g}"
    if "connectivity/eval_error_barrier/median" in values:
        text += f", eval error {values['connectivity/eval_error_barrier/median']:.3g}"
    return text


def step_line(step: int, num_steps: int, text: str) -> str:
    """'step  100  TEXT', the step right-aligned to the run's last."""
    return f"step {step:>{len(str(num_steps))}}  {text}"


def speed(batches, step: int, num_steps: int, steps_per_second: float) -> str:
    """'1,234 steps/s' for full batches; epoch, examples/s and ETA for minibatches
    (`batches`: training/steps.Batches)."""
    if batches.full:
        return f"{steps_per_second:,.0f} steps/s"
    left = round((num_steps - step) / steps_per_second)
    return (
        f"epoch {step / batches.steps_per_epoch:.2f}  "
        f"{steps_per_second * batches.size:,.0f} examples/s  ETA {left // 60}m{left % 60:02d}s"
    )


def built(where: str, members: int, part: int, cap: int, params: int, seconds: float,
          resumed_at: int, trained_in: int | None = None) -> str:  # fmt: skip
    """'RUN: [N members, ]P parameters, compiled in S s[, resumed at step K]'
    (`trained_in`: the part size a resumed run trained in before)."""
    what = f"{members} members, " if members > 1 else ""
    if part < members:  # training/memory.py
        why = "what memory holds"
        if cap:
            why = f"at most members_per_program={cap}, and {why}"
        if trained_in == part:
            why = "as before the checkpoint"
        elif trained_in:  # fewer now: other parts can round otherwise (docs/design.md)
            before = "all at once" if trained_in >= members else f"in parts of {trained_in:,}"
            why += f"; {before} before the checkpoint, so not bitwise the same"
        what = f"{members:,} members in {-(-members // part)} parts of {part:,} ({why}), "
    resumed = f", resumed at step {resumed_at}" if resumed_at else ""
    return f"{where}: {what}{params:,} parameters, compiled in {seconds:.2f} s{resumed}"


def done(steps: int, first: int, seconds: float, probed: float,
         measurements: dict[str, list[float]], final: dict | None, where: str) -> str:  # fmt: skip
    """The end of a program's training: the steps this process trained (from
    step `first`: a resumed run's are fewer than the run's), their time, the
    probes' share, each measuring probe's seconds per measurement
    (`measurements`: {'sharpness': [seconds, ...], ...}), and for a single
    run (`final`: its last scalars) the train and eval headline."""
    probed_text = f"{probed:.2f} s"
    for probe, each in measurements.items():
        if each:  # the median: the first call also warms up
            probed_text += f"; {probe} {np.median(each):.3f} s per measurement"
    result = ""
    if final is not None:
        train, evaluation = ({k[len(s):]: v for k, v in final.items() if k.startswith(s)}
                             for s in ("train/", "eval/"))  # fmt: skip
        result = f"; train {headline(train)}; eval {headline(evaluation)}"
    trained = f"{steps} steps" if not first else (
        f"{steps - first} steps (resumed at step {first}; {steps} in the run)")  # fmt: skip
    return (
        f"done: {trained} in {seconds:.2f} s (pictures and probes {probed_text})"
        f"{result}. Run written to {where}"
    )


def see_it(run_dir: str, sweep: bool) -> str:
    """The TensorBoard command for a finished run: its experiment's folder
    (its runs side by side, named by their overrides), or a sweep's own
    directory (its members and aggregates, none of the folder's other runs)."""
    if sweep:
        hint = "; type aggregate in its run filter for the means over seeds alone"
        return f"see it with: tensorboard --logdir {run_dir}{hint}"
    return f"see it with: tensorboard --logdir {os.path.dirname(run_dir)}"

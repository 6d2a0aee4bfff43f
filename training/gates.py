"""The seminar's perceptron experiments: fixed gates, the delta rule, XOR.

    python train.py --config=configs/gates.py:and                   # fixed weights
    python train.py --config=configs/gates.py:and --config.mode=delta
    python train.py --config=configs/gates.py:xor                   # the rule fails
    python train.py --config=configs/xor_from_gates.py              # two layers work

`run(config, run_dir)` is the whole job (train.py calls it for configs
with `experiment = "gates"`):
- fixed mode: the seminar's weights (nets.perceptron.GATES); for xor, the
  two-layer network AND(OR, NAND). Prints the truth table and writes it to
  TEXT, with a picture of the decision regions over the four points.
- delta mode: learns w and theta with the delta rule, NOT gradient descent:
  for each point in turn, `w += lr * (t - y) * x` and `theta -= lr * (t - y)`.
  One jit-compiled epoch (a `lax.scan` over the four points) per call;
  after each epoch it logs accuracy, wrong points, w1, w2, theta and a
  picture of the epoch's four updates (the line after each point), and it
  stops once all four points are right. XOR never gets there: no line
  separates its classes, so 3/4 is the best; the line swings within every
  epoch and ends it where it began.
"""

import os
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from dashboards import network, pictures, summaries
from nets.perceptron import GATES, Perceptron, XorFromGates
from plumbing.failures import UserError
from plumbing.registry import lookup
from training import parallel

INPUTS = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
TARGETS = {
    "or": np.array([0, 1, 1, 1], np.float32),
    "and": np.array([0, 0, 0, 1], np.float32),
    "nand": np.array([1, 1, 1, 0], np.float32),
    "xor": np.array([0, 1, 1, 0], np.float32),
}
MODES = ("fixed", "delta")
LO, HI = -0.5, 1.5  # the square the pictures show around {0, 1}^2


def check_config(config: ml_collections.ConfigDict) -> None:
    """Raises UserError for settings that cannot work, before any work."""
    lookup(TARGETS, config.gate, "gate")
    lookup({m: m for m in MODES}, config.mode, "mode")
    if config.mode == "delta":
        if not (np.isfinite(config.learning_rate) and config.learning_rate > 0):
            raise UserError(f"learning_rate must be a number > 0, got {config.learning_rate}")
        if config.max_epochs < 1:
            raise UserError(f"max_epochs must be >= 1, got {config.max_epochs}")
        if not config.init_scale >= 0:
            raise UserError(f"init_scale must be >= 0, got {config.init_scale}")


@jax.jit
def delta_rule_epoch(w, theta, x, t, learning_rate):
    """One pass of the delta rule over the points, in order.

    Args:
      w: (in_features,) weights; theta: () threshold.
      x: (n, in_features) inputs; t: (n,) 0/1 targets.
      learning_rate: the step size lr.

    Returns:
      (w, theta) after the epoch; wrong, (n,) bool: the points the
      perceptron got wrong as it met them (each one moved the line); and
      (ws, thetas), (n, in_features) and (n,): w and theta after each point.
    """

    def one_point(carry, example):
        w, theta = carry
        xi, ti = example
        error = ti - Perceptron(w, theta)(xi)  # -1, 0 or +1
        w, theta = w + learning_rate * error * xi, theta - learning_rate * error
        return (w, theta), (error != 0, w, theta)

    (w, theta), (wrong, ws, thetas) = jax.lax.scan(one_point, (w, theta), (x, t))
    return w, theta, wrong, (ws, thetas)


def truth_table(outputs, targets, hidden=None) -> str:
    """Markdown truth table: x1, x2, [OR, NAND,] y, target, right/WRONG."""
    names = ["x1", "x2", *(["OR", "NAND"] if hidden is not None else []), "y", "target", ""]
    rows = ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
    for i, (x1, x2) in enumerate(INPUTS.astype(int)):
        y, t = int(outputs[i]), int(targets[i])
        cells = [x1, x2, *(np.asarray(hidden[i]).astype(int) if hidden is not None else [])]
        cells += [y, t, "right" if y == t else "WRONG"]
        rows.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(rows)


def region_picture(model, targets: np.ndarray, size: int = 200) -> np.ndarray:
    """Where the model outputs 1 (blue) and 0 (orange), the four points on top.

    Each point is coloured by its TARGET, so a point on the wrong side of
    the line stands out.
    """
    grid = jnp.asarray(pictures.grid_points(size, LO, HI))
    outputs = np.asarray(model(grid)).reshape(size, size)
    return pictures.decision_boundary(outputs, INPUTS, targets, LO, HI)


def updates_picture(ws, thetas, wrong, targets: np.ndarray, panel: int = 80) -> np.ndarray:
    """One delta-rule epoch, update by update: a panel per point met, in
    order, with the regions after it, that point ringed and, under it,
    whether it was wrong (so the line moved) or right (it stayed).

    Args:
      ws, thetas: (4, 2) and (4,), w and theta after each point
        (`delta_rule_epoch`'s last output); wrong: (4,) bool.

    Returns (height, width, 3) uint8, sized for a TensorBoard card.
    """
    from PIL import Image, ImageDraw

    gap, row = 4, pictures.FONT + 3
    sheet = Image.new("RGB", (len(INPUTS) * (panel + gap) - gap, panel + 2 * row + 4), "white")
    draw, typeface = ImageDraw.Draw(sheet), pictures.font()
    for i, (point, moved) in enumerate(zip(INPUTS, wrong, strict=True)):
        left = i * (panel + gap)
        regions = region_picture(Perceptron(ws[i], thetas[i]), targets, panel)
        sheet.paste(Image.fromarray(regions), (left, 0))
        r = (HI - point[1]) / (HI - LO) * (panel - 1)  # the point's pixel
        c = left + (point[0] - LO) / (HI - LO) * (panel - 1)
        draw.ellipse([c - 8, r - 8, c + 8, r + 8], outline="black", width=2)
        x1, x2 = point.astype(int)
        middle = left + panel / 2
        draw.text(
            (middle, panel + 3), f"x = ({x1}, {x2})", fill="black", font=typeface, anchor="ma"
        )
        verdict, ink = ("wrong", (214, 39, 40)) if moved else ("right", (90, 90, 90))
        draw.text((middle, panel + 3 + row), verdict, fill=ink, font=typeface, anchor="ma")
    return np.asarray(sheet)


def network_picture(model: XorFromGates, targets: np.ndarray) -> np.ndarray:
    """The Playground's view of XOR from gates: x1 and x2, the hidden OR and
    NAND units, and the output AND, each over the square (dashboards/network.py)."""
    size = 48
    grid = jnp.asarray(pictures.grid_points(size, LO, HI))
    hidden = np.asarray(model.hidden(grid)).reshape(size, size, 2)
    # A reversed perceptron (NAND) fires below its line: its weights, negated.
    kernel = lambda *units: np.stack(  # noqa: E731
        [np.asarray(u.w[...]) * (-1 if u.reverse else 1) for u in units], axis=1
    )
    return network.network(
        [np.asarray(grid[:, i]).reshape(size, size) for i in range(2)],
        ("x1", "x2"),
        [[hidden[..., 0], hidden[..., 1]]],
        [kernel(model.or_, model.nand), kernel(model.and_)],
        region_picture(model, targets),
    )


def run(config: ml_collections.ConfigDict, run_dir: str, console=print) -> dict[str, float]:
    """Runs the gate experiment `config` into `run_dir`; returns final metrics.

    Returns: {"accuracy": fraction of the four points right, "epochs":
    delta-rule epochs run (0 in fixed mode)}.
    """
    check_config(config)
    os.makedirs(run_dir, exist_ok=True)
    if summaries.event_files(run_dir):
        console(f"{run_dir} is finished; --new_run starts another run")
        return {}
    targets = TARGETS[config.gate]
    writer = parallel.writer(run_dir)
    try:
        # HPARAMS: its own row, named as its run, with the gate's fields and accuracy
        hparams = {k: v for k, v in config.to_dict().items() if k != "experiment"}
        writer.hparams(hparams, trial_id=os.path.basename(os.path.normpath(run_dir)))
        writer.hparams_columns(list(hparams), ["train/accuracy", "train/wrong"])
        writer.text("config", summaries.config_markdown(config.to_dict()), 0)
        writer.text("run", summaries.run_markdown(), 0)
        if config.mode == "fixed":
            result = _fixed(config, targets, writer, console)
        else:
            result = _delta(config, targets, writer, console)
    finally:
        writer.close()
    console(f"Run written to {run_dir}")
    return result


def _fixed(config, targets, writer, console) -> dict[str, float]:
    if config.gate == "xor":
        model = XorFromGates()
        hidden = np.asarray(model.hidden(INPUTS))
        title = "XOR = AND(OR(x1, x2), NAND(x1, x2)), the seminar's fixed weights"
    else:
        model, hidden = Perceptron.gate(config.gate), None
        (w1, w2), theta, reverse = GATES[config.gate]
        sign = "<=" if reverse else ">="
        title = f"{config.gate.upper()}: y = 1 if {w1}*x1 + {w2}*x2 {sign} {theta}"
    outputs = np.asarray(model(INPUTS))
    table = truth_table(outputs, targets, hidden)
    accuracy = float(np.mean(outputs == targets))
    console(f"{title}\n{table}\n{int(accuracy * 4)}/4 right")
    writer.text("truth_table", f"**{summaries.escape_markdown(title)}**\n\n{table}", 0)
    writer.image("views/decision_regions", region_picture(model, targets), 0)
    if config.gate == "xor":
        writer.image("views/network/train", network_picture(model, targets), 0)
    writer.write_scalars(0, {"train/accuracy": accuracy, "train/wrong": 4 - accuracy * 4})
    return {"accuracy": accuracy, "epochs": 0}


def _delta(config, targets, writer, console) -> dict[str, float]:
    key = jax.random.key(config.seed)
    w = jax.random.uniform(key, (2,), minval=-1, maxval=1) * config.init_scale
    theta = jax.random.uniform(jax.random.fold_in(key, 1), ()) * config.init_scale
    x, t = jnp.asarray(INPUTS), jnp.asarray(targets)
    lr = jnp.float32(config.learning_rate)
    start, best = time.perf_counter(), 0.0

    def log(epoch, updates=None):
        model = Perceptron(w, theta)
        outputs = np.asarray(model(INPUTS))
        accuracy = float(np.mean(outputs == targets))
        w1, w2 = np.asarray(w).tolist()
        writer.write_scalars(
            epoch,
            {
                "train/accuracy": accuracy,
                "train/wrong": float(np.sum(outputs != targets)),
                "perceptron/w1": w1,
                "perceptron/w2": w2,
                "perceptron/theta": float(theta),
            },
        )
        if updates is not None:  # the epoch's four updates, not only where it ended
            writer.image("views/decision_line", updates_picture(*updates, targets), epoch)
        console(
            f"epoch {epoch:>3}  {int(accuracy * 4)}/4 right  "
            f"w = ({w1:+.3f}, {w2:+.3f})  theta = {float(theta):+.3f}"
        )
        return accuracy, outputs

    accuracy, outputs = log(0)
    epoch = 0
    while accuracy < 1 and epoch < config.max_epochs:
        w, theta, wrong, (ws, thetas) = delta_rule_epoch(w, theta, x, t, lr)
        epoch += 1
        accuracy, outputs = log(epoch, (np.asarray(ws), np.asarray(thetas), np.asarray(wrong)))
        best = max(best, accuracy)
    table = truth_table(outputs, targets)
    w1, w2 = np.asarray(w).tolist()
    if accuracy == 1:
        verdict = (
            f"The delta rule learned {config.gate.upper()} in {epoch} epochs: "
            f"y = 1 if {w1:.3f}*x1 + {w2:.3f}*x2 >= {float(theta):.3f}"
        )
    else:
        verdict = (
            f"After {epoch} epochs the delta rule has {int(accuracy * 4)}/4 right "
            f"(best {int(max(best, accuracy) * 4)}/4). "
            + (
                "No straight line separates XOR's 1s from its 0s, so a single "
                "perceptron never gets all four: a hidden layer does "
                "(configs/xor_from_gates.py, configs/xor.py)."
                if config.gate == "xor"
                else "Raise --config.max_epochs or the learning rate."
            )
        )
    seconds = time.perf_counter() - start
    console(f"{table}\n{verdict} ({seconds:.2f} s)")
    writer.text("truth_table", f"**{summaries.escape_markdown(verdict)}**\n\n{table}", epoch)
    return {"accuracy": accuracy, "epochs": epoch}

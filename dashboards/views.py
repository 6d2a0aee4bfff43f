"""What a run shows of its model besides its loss: pictures and per-layer statistics.

(`config.probes` names something else: the sharpness and landscape
measurements of training/curvature.py and landscape.py.) `Views` is the
one object the training loop asks for these, at these moments:
`at_start` (the activation and its derivative, once per run), `at_log`
(layer statistics, small parameters as scalars), `at_picture` (a 2-D
classifier's decision boundary and network; a regression's fit), `at_eval`
(the confusion matrix) and
`at_end` (maxout's learned functions; a regression's recovered
parameters next to the true ones). Each computation is one jitted
function of the parameters; drawing happens on the host, with NumPy
(see pictures.py). `seconds` counts the time spent here so the run
can report its cost.
"""

import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

import nets
from dashboards import network, pictures, projector
from data import Dataset
from plumbing.registry import name_list

RESOLUTION = 200  # pixels per side of a decision-boundary picture
UNIT_RESOLUTION = 48  # points per side of a unit's heatmap in the network picture
ZERO = 1e-3  # a weight this small counts as switched off (weights/zero_fraction)
SCALAR_PARAMS_MAX = 4  # parameter arrays this small are also logged as scalars
SATURATED = 0.1  # a slope below this fraction of its peak counts as saturated
MISTAKES_FROM = 1000  # misclassified images are looked for among the first N eval images
MISTAKES_SHOWN = 24  # and this many are shown


def param_arrays(params: nnx.State) -> dict[str, np.ndarray]:
    """{'weights/layers/0/kernel': array, ...} for histograms."""
    flat = {}
    for path, value in jax.tree_util.tree_leaves_with_path(params):
        flat["weights/" + nets.param_name(path)] = np.asarray(value)
    return flat


@jax.jit
def zero_fraction(params: nnx.State) -> jax.Array:
    """Each member's fraction of weights (kernel entries; not biases) with
    |w| < ZERO, from the members' stacked parameters (a leading members
    axis), where they are (a device): L1 regularization drives the useless
    ones there. Only these numbers, one per member, need reach the host."""
    leaves = jax.tree_util.tree_leaves_with_path(params)
    kernels = [w for path, w in leaves if nets.param_name(path).endswith("kernel")]
    if not kernels:
        return jnp.zeros(len(leaves[0][1]))
    zeros = sum(jnp.sum((jnp.abs(w) < ZERO).reshape(len(w), -1), axis=1) for w in kernels)
    return zeros / sum(w[0].size for w in kernels)


def buckets(values: jax.Array, weights: jax.Array, bins: int = 30) -> jax.Array:
    """(bins, 3): [left edge, right edge, count] of `values` counted by
    `weights` (1 or 0), as TensorBoard's histogram summaries bucket them:
    `bins` equal widths from the least to the greatest counted value (all in
    the last bucket if they are equal)."""
    low = jnp.min(jnp.where(weights > 0, values, jnp.inf))
    high = jnp.max(jnp.where(weights > 0, values, -jnp.inf))
    width = (high - low) / bins
    index = jnp.where(width > 0, jnp.floor((values - low) / jnp.where(width > 0, width, 1)), bins)
    counts = jnp.zeros(bins).at[jnp.clip(index.astype(jnp.int32), 0, bins - 1)].add(weights)
    edges = jnp.where(width > 0, jnp.linspace(low, high, bins + 1), low)
    return jnp.stack([edges[:-1], edges[1:], counts], axis=1)


@jax.jit
def point_histograms(params: nnx.State, points: jax.Array, alive: jax.Array) -> dict:
    """{'weights/layers/0/kernel': (points, 30, 3), ...}: each parameter's
    buckets over every member of each point (`points`: (points, seeds) of
    member indices) still training (`alive`), computed where the weights
    are: what a sweep without member runs writes into its aggregate runs."""

    def of_point(leaf, members):
        values = leaf[members].reshape(len(members), -1)  # (seeds, entries)
        weights = jnp.broadcast_to(alive[members][:, None], values.shape).astype(values.dtype)
        return buckets(values.ravel(), weights.ravel())

    return {
        "weights/" + nets.param_name(path): jax.vmap(of_point, in_axes=(None, 0))(leaf, points)
        for path, leaf in jax.tree_util.tree_leaves_with_path(params)
    }


def small_param_scalars(params: nnx.State) -> dict[str, float]:
    """Each entry of each parameter array of <= SCALAR_PARAMS_MAX entries.

    A linear regression's W and b, a perceptron's weights: curves in SCALARS
    as well as histograms. Tags: 'weights/layers/0/kernel/0', ...
    """
    scalars = {}
    for name, value in param_arrays(params).items():
        if value.size <= SCALAR_PARAMS_MAX:
            for i, v in enumerate(value.ravel()):
                scalars[f"{name}/{i}"] = float(v)
    return scalars


def layer_statistics(model: nnx.Module, x: jax.Array) -> tuple[dict, dict]:
    """Per hidden layer of an MLP on inputs x: (scalars, arrays).

    scalars, for layer i:
      views/layers/i/dead: fraction of units whose activation has zero slope on
        every example (a dead ReLU unit never learns again);
      views/layers/i/saturated: fraction of (example, unit) pairs where the slope
        is below SATURATED x its peak (sigmoid and tanh far from 0; ReLU's
        flat side).
    arrays (histograms): views/layers/i/preactivations, views/layers/i/activations, and
      views/layers/i/maxout_winner (which line is the maximum) for maxout.
    """
    scalars, arrays = {}, {}
    probe = jnp.linspace(-10.0, 10.0, 2001)
    for i, ((z, a), act) in enumerate(zip(model.hidden(x), model.activations, strict=True)):
        # For an elementwise function, the JVP with a tangent of ones is f'(z).
        slope = jnp.abs(jax.jvp(act, (z,), (jnp.ones_like(z),))[1])
        grid = jnp.broadcast_to(probe[:, None], (len(probe), z.shape[-1]))
        peak = jnp.max(jnp.abs(jax.jvp(act, (grid,), (jnp.ones_like(grid),))[1]))
        scalars[f"views/layers/{i}/dead"] = jnp.mean(jnp.all(slope == 0, axis=0))
        scalars[f"views/layers/{i}/saturated"] = jnp.mean(slope < SATURATED * peak)
        arrays[f"views/layers/{i}/preactivations"] = z
        arrays[f"views/layers/{i}/activations"] = a
        if isinstance(act, nets.activations.Maxout):
            arrays[f"views/layers/{i}/maxout_winner"] = act.winners(z)
    return scalars, arrays


def extent(x: np.ndarray) -> tuple[float, float]:
    """The square a 2-D picture shows: the data's range, padded by 25%."""
    lo, hi = float(np.min(x)), float(np.max(x))
    pad = 0.25 * max(hi - lo, 1e-3)
    return lo - pad, hi + pad


class Views:
    """Pictures and statistics of one run's model (see the module docstring).

    Args:
      config: the run's config (reads `model`, `layer_stats` and
        `embedding_examples`).
      graphdef: the model's static half from `nnx.split(model, nnx.Param)`.
      dataset: the run's data; 2-D classifiers get decision boundaries.
    """

    def __init__(self, config: ml_collections.ConfigDict, graphdef, dataset: Dataset):
        self.seconds = 0.0
        self._embedding_examples = config.embedding_examples
        self._graphdef = graphdef
        self._dataset = dataset
        self._layer_stats = bool(config.layer_stats) and config.model.name == "mlp"
        self._model = config.model
        self._eval_x = jnp.asarray(dataset.x_eval)
        if dataset.x_train.shape[-1] == 2 and not dataset.is_regression:
            self._extent = extent(dataset.x_train)
            self._grid = jnp.asarray(pictures.grid_points(RESOLUTION, *self._extent))
            self._probabilities = jax.jit(self._grid_probabilities)
        else:
            self._grid = None
        self._fit = dataset.is_regression and config.model.name == "mlp"
        self._network = self._grid is not None and config.model.name == "mlp"
        if self._network:  # the Playground's view of the units (dashboards/network.py)
            self._feature_names = nets.feature_names(config.data.features)
            self._unit_grid = jnp.asarray(pictures.grid_points(UNIT_RESOLUTION, *self._extent))
            self._units = jax.jit(self._unit_values)
        self._predict = jax.jit(lambda params, x: nets.predictions(nets.apply(graphdef, params, x)))
        self._predict_values = jax.jit(lambda params, x: nets.apply(graphdef, params, x))
        self._statistics = jax.jit(
            lambda params, x: layer_statistics(nnx.merge(graphdef, params), nets.to_inputs(x))
        )

    def _grid_probabilities(self, params):
        probs = nets.probabilities(nets.apply(self._graphdef, params, self._grid))
        if self._dataset.num_classes == 2:
            return probs[:, -1].reshape(RESOLUTION, RESOLUTION)  # P(class 1)
        return probs.reshape(RESOLUTION, RESOLUTION, -1)

    def _unit_values(self, params):
        """Over a coarse grid of the plane: each input feature, the first
        network.MAX_UNITS units of each hidden layer, and every kernel."""
        model = nnx.merge(self._graphdef, params)
        inputs = model.input_features(self._unit_grid)[:, : network.MAX_UNITS]
        hidden = [a[:, : network.MAX_UNITS] for _, a in model.hidden(self._unit_grid)]
        return inputs, hidden, [layer.kernel[...] for layer in model.layers]

    def at_start(self, writer) -> None:
        """Each configured activation and its derivative, over [-4, 4]."""
        start = time.perf_counter()
        x = np.linspace(-4.0, 4.0, 801, dtype=np.float32)[:, None]
        for name in dict.fromkeys(name_list(self._model.activation)):  # each once, in order
            activation = nets.make_activation(name, nets.activation_options(self._model))(1)
            # One compiled call, not a dozen eager ops each compiled on first use.
            y, slope = jax.jit(lambda x, f=activation: jax.jvp(f, (x,), (jnp.ones_like(x),)))(x)
            image = pictures.activation_chart(name, x[:, 0], y[:, 0], slope[:, 0])
            writer.image(f"views/activation/{name}", image, 0)
        self.seconds += time.perf_counter() - start

    def at_log(self, writer, step: int, params: nnx.State) -> None:
        """Small parameters as scalars; layer statistics if asked for."""
        start = time.perf_counter()
        writer.write_scalars(step, small_param_scalars(params))
        if self._layer_stats:
            scalars, arrays = jax.device_get(self._statistics(params, self._eval_x))
            writer.write_scalars(step, scalars)
            writer.write_histograms(step, arrays)
        self.seconds += time.perf_counter() - start

    def at_picture(self, writer, step: int, params: nnx.State) -> None:
        """A 2-D classifier's decision boundary, with the train (and eval)
        points, and its network; a regression's fit to its train points."""
        start = time.perf_counter()
        if self._fit:
            writer.image("views/fit/train", self._fit_picture(params), step)
        if self._grid is not None:
            probs = np.asarray(self._probabilities(params))
            ds = self._dataset
            splits = [("train", ds.x_train, ds.y_train), ("eval", ds.x_eval, ds.y_eval)]
            if ds.x_eval is ds.x_train:  # xor: eval on the training points
                splits = splits[:1]
            units = jax.device_get(self._units(params)) if self._network else None
            for split, x, y in splits:
                image = pictures.decision_boundary(probs, x, y, *self._extent)
                writer.image(f"views/decision_boundary/{split}", image, step)
                if units:
                    for tag, picture in self._network_pictures(units, image).items():
                        writer.image(f"views/network/{split}{tag}", picture, step)
        self.seconds += time.perf_counter() - start

    def _network_pictures(self, units, output: np.ndarray) -> dict[str, np.ndarray]:
        """{'': the picture} for up to network.BAND hidden layers; a deeper
        network's bands {'/layers_1-3': ..., '/layers_4-6': ...}."""
        inputs, hidden, kernels = units

        def panels(values):  # (points, units) -> a (R, R) heatmap per unit
            return list(np.moveaxis(values.reshape(UNIT_RESOLUTION, UNIT_RESOLUTION, -1), -1, 0))

        sizes = [k.shape[0] for k in kernels]  # each column's units, the inputs first
        hidden = [panels(a) for a in hidden]
        args = (panels(inputs), self._feature_names, hidden, kernels, output)
        bands = network.bands(len(hidden))
        return {
            "" if len(bands) == 1 else f"/layers_{a + 1}-{b}": network.network(
                *args, sizes=sizes, columns=(a, b)
            )
            for a, b in bands
        }

    def _fit_picture(self, params: nnx.State) -> np.ndarray:
        """The train points and the model's fit: with one input, y against x
        with the fitted (and true) line; with more, predicted against true y."""
        ds = self._dataset
        x, y = ds.x_train, ds.y_train[:, 0]
        if x.shape[1] > 1:
            predicted = np.asarray(self._predict_values(params, x))[:, 0]
            ends = np.array([min(y.min(), predicted.min()), max(y.max(), predicted.max())])
            series = [
                pictures.Series(predicted, "train points", x=y, dots=True),
                pictures.Series(ends, "perfect fit", dashed=True),
            ]
            title = "predictions against targets"
            return pictures.chart(ends, series, title, "target y", y_label="predicted y")
        line_x = np.linspace(x.min(), x.max(), 101, dtype=np.float32)
        fitted = np.asarray(self._predict_values(params, line_x[:, None]))[:, 0]
        true, title = None, "the model's fit"
        if ds.truth:
            true = line_x * float(ds.truth["kernel"][0, 0]) + float(ds.truth["bias"][0])
        if not self._model.hidden_sizes:  # y = x w + b: say w and b
            w, b = (float(v) for v in np.polyfit(line_x, fitted, 1))
            title = f"fitted line y = {w:.3f} x {'-' if b < 0 else '+'} {abs(b):.3f}"
        return pictures.fit_chart(x[:, 0], y, line_x, fitted, true, title)

    def at_eval(self, writer, step: int, params: nnx.State, confusion: np.ndarray) -> None:
        """For multi-class classifiers: per-class accuracy, the confusion
        matrix and, for images, the first misclassified eval images."""
        ds = self._dataset
        if ds.num_classes <= 2:
            return
        start = time.perf_counter()
        names = ds.names()
        per_class = np.diag(confusion) / np.maximum(confusion.sum(axis=1), 1)
        writer.write_scalars(
            step,
            {f"eval/class_accuracy/{n}": float(a) for n, a in zip(names, per_class, strict=True)},
        )
        writer.image("views/confusion_matrix", pictures.confusion_matrix(confusion, names), step)
        if ds.images_eval is not None:
            x, y = ds.x_eval[:MISTAKES_FROM], ds.y_eval[:MISTAKES_FROM]
            predicted = np.asarray(self._predict(params, x))
            wrong = np.flatnonzero(predicted != y)[:MISTAKES_SHOWN]
            if len(wrong):
                captions = [f"{names[y[i]]} -> {names[predicted[i]]}" for i in wrong]
                grid = pictures.captioned_grid(ds.images_eval[wrong], captions)
                writer.image("views/misclassified", grid, step)
        self.seconds += time.perf_counter() - start

    def at_end(self, writer, step: int, params: nnx.State, run_dir: str) -> str | None:
        """Maxout's learned functions, the EMBEDDINGS of a classifier's eval
        examples (files in `run_dir`, beside the event file); returns a
        regression's learned-vs-true table (or None)."""
        start = time.perf_counter()
        model = nnx.merge(self._graphdef, params)
        for i, act in enumerate(getattr(model, "activations", [])):
            if isinstance(act, nets.activations.Maxout):
                tag = f"views/activation/maxout_learned/layers_{i}"
                writer.image(tag, maxout_panels(act), step)
        classifier = not self._dataset.is_regression
        if classifier and self._embedding_examples and hasattr(model, "features"):
            self._write_embedding(model, run_dir)
        report = regression_report(params, self._dataset.truth) if self._dataset.truth else None
        self.seconds += time.perf_counter() - start
        return report

    def _write_embedding(self, model, run_dir: str) -> None:
        """The last hidden layer's output for the first eval examples."""
        ds = self._dataset
        x, labels = ds.x_eval[: self._embedding_examples], ds.y_eval[: self._embedding_examples]
        features, logits = jax.jit(lambda x: (model.features(x), model(x)))(nets.to_inputs(x))
        predicted = np.asarray(nets.predictions(logits))
        names = ds.names()
        metadata = {
            "class": [names[c] for c in labels],
            "predicted": [names[c] for c in predicted],
            "right": ["yes" if p == c else "no" for p, c in zip(predicted, labels, strict=True)],
        }
        images = ds.images_eval[: len(x)] if ds.images_eval is not None else None
        projector.write(run_dir, "features", np.asarray(features), metadata, images)


def maxout_panels(act, columns: int = 8, max_units: int = 32) -> np.ndarray:
    """Each unit's learned maxout function over [-3, 3], one small panel each."""
    x = np.linspace(-3.0, 3.0, 301, dtype=np.float32)
    units = min(act.num_features, max_units)
    y = np.asarray(act(jnp.broadcast_to(x[:, None], (len(x), act.num_features))))
    panels = [pictures.curves(x, [y[:, u]], size=(80, 80)) for u in range(units)]
    rows = -(-units // columns)
    blank = np.full_like(panels[0], 255)
    panels += [blank] * (rows * columns - units)
    border = np.zeros((80, 2, 3), np.uint8) + 180
    lines = [
        np.concatenate([p for q in panels[r * columns : (r + 1) * columns] for p in (q, border)], 1)
        for r in range(rows)
    ]
    return np.concatenate(lines, 0)


def regression_report(params: nnx.State, truth: dict) -> str:
    """Markdown table of the learned W and b next to the true ones."""
    learned = {k.rsplit("/", 1)[-1]: v for k, v in param_arrays(params).items()}
    rows = ["| parameter | true | learned |", "|---|---|---|"]
    for name, true in truth.items():
        got = learned[name].ravel()
        for i, t in enumerate(np.ravel(true)):
            label = "W" if name == "kernel" else "b"
            rows.append(f"| {label}[{i}] | {t:.4f} | {got[i]:.4f} |")
    return "\n".join(rows)

"""Linear mode connectivity: the loss on the straight line between two trained networks.

    line = make_line(evaluate, points=25)          # evaluate: steps.make_evaluate's
    loss, accuracy = line(params_a, params_b, (x, y))  # each (points,), a = 0 ... 1
    barrier(loss)                                      # the bump above the chord

Two networks trained from different seeds reach different minima. Are
they in one basin? Walk the straight line theta(a) = (1 - a) theta_A +
a theta_B from one (a = 0) to the other (a = 1) and watch the loss. The
BARRIER is how far it rises above the straight chord between the two
ends, max over a of L(a) - ((1 - a) L(0) + a L(1)) (Entezari, Sedghi,
Saukh and Neyshabur 2022, "The Role of Permutation Invariance in Linear
Mode Connectivity"). Frankle, Dziugaite, Roy and Carbin (2020, "Linear
Mode Connectivity and the Lottery Ticket Hypothesis") measure the rise
above the MEAN of the two ends instead, max L(a) - (L(0) + L(1)) / 2; the
two differ by at most half the difference of the ends' losses, so they
agree where two trained nets end as low as each other. A barrier near 0:
the two are linearly connected, one valley; a high one: a ridge between
them. The
error barrier is the same of the classification error (1 - accuracy);
Frankle et al. call a pair connected when it is below 2% (`CONNECTED`).

Every pair of one sweep's point is in one compiled call: the pairs 16 at
a time (a convolutional net's one at a time), the line's points one after
another, each point evaluated in batches of `eval_batch_size`, so the
memory is that of evaluating 16 nets (one CNN) on one batch, however many
`probes.examples` there are.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

CONNECTED = 0.02  # an error barrier at or below this: linearly connected (Frankle et al.)


def make_line(evaluate: Callable, points: int) -> Callable:
    """`(params_a, params_b, (x, y)) -> (loss (points,), accuracy (points,))`
    along theta(a) = (1 - a) theta_a + a theta_b at a = linspace(0, 1,
    points). `evaluate`: `steps.make_evaluate`'s `(params, (x, y)) ->
    (metrics, confusion)` on that split, so the loss is the data loss (the
    regularization apart) as eval/loss is, in batches; accuracy is NaN for
    a regression."""

    def at(params_a, params_b, split, a):
        params = jax.tree.map(lambda p, q: (1 - a) * p + a * q, params_a, params_b)
        metrics, _ = evaluate(params, split)
        return metrics["loss"], metrics.get("accuracy", jnp.nan)

    def line(params_a, params_b, split):
        alphas = jnp.linspace(0.0, 1.0, points)
        return jax.lax.map(lambda a: at(params_a, params_b, split, a), alphas)

    return line


def barrier(values: np.ndarray) -> np.ndarray:
    """max over the line of `values` (..., points) minus the chord between
    its ends: >= 0, as the ends themselves are on the chord."""
    values = np.asarray(values, np.float64)
    alphas = np.linspace(0.0, 1.0, values.shape[-1])
    chord = (1 - alphas) * values[..., :1] + alphas * values[..., -1:]
    return np.max(values - chord, axis=-1)


def seed_pairs(indices: np.ndarray, training: np.ndarray | None = None) -> np.ndarray:
    """(pairs, 2): a point's members (its seeds, in order) two by two, (0, 1),
    (2, 3), ...: disjoint pairs, so the fraction connected is a count of
    independent trials (an odd last seed is left out); with `training` (a
    mask over all members), only the pairs whose two members still train
    (a diverged member takes its pair out: split_step's pairs stay pairs)."""
    indices = np.asarray(indices)
    pairs = indices[: len(indices) // 2 * 2].reshape(-1, 2)
    return pairs if training is None else pairs[np.asarray(training)[pairs].all(axis=1)]

"""How noisy one example's gradient is against the mean gradient (probes.gradient_noise).

    measure = make_gradient_noise(train_step.loss, population=len(dataset.y_train))
    noise = measure(params, (x, y))   # noise.b_simple, noise.trace, noise.signal, noise.snr

From the n per-example gradients g_i (`jax.vmap(jax.grad(loss))`, one per
example of the batch: n of the training set's N) with mean g:

    trace   tr(Sigma) = sum over weights of the per-example variance
            (unbiased: divided by n - 1)
    signal  |G|^2, the squared norm of the whole training set's gradient G,
            unbiased: |g|^2 - (1 - n/N) tr(Sigma) / n. The mean of n noisy
            gradients has (1 - n/N) tr(Sigma) / n of noise in its squared
            norm (n drawn from N without replacement: none when n = N, the
            whole set; tr(Sigma) / n, McCandlish et al.'s, when N is
            infinite). A few examples' estimate can come out at or below 0
            (the signal lost in their noise): it is clipped at TINY.
    b_simple  tr(Sigma) / |G|^2: the simple noise scale (McCandlish, Kaplan,
            Amodei et al. 2018, "An Empirical Model of Large-Batch
            Training", eq. 2.8 and appendix A); NaN where the signal came
            out at or below 0 (not measured: take more examples). A random
            minibatch of B of the N examples has (1 - B/N) tr(Sigma) / B of
            noise in its squared norm, about tr(Sigma) / B for B << N, as
            much as the signal at B = b_simple: batches much smaller than it
            are mostly noise (a larger batch buys almost proportionally
            faster progress), batches much larger are mostly signal (a
            larger batch buys little). The whole set (B = N) has no noise.
    snr     per weight matrix or kernel l: |G_l|^2 / tr(Sigma_l), the same
            two numbers over that layer's weights alone (1 / its own
            b_simple): one example's signal-to-noise ratio in that layer; a
            batch of B << N examples has about B times it. A layer with no
            gradient at all (both clipped at TINY) reads 1.

The loss is the training loss without dropout (the network as evaluated).
"""

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import nets

TINY = 1e-30  # the smallest |G|^2 (and layer tr(Sigma)) the ratios divide by


class GradientNoise(NamedTuple):
    """One network's gradient noise on a batch (`make_gradient_noise`)."""

    b_simple: jax.Array  # tr(Sigma) / |G|^2, in examples (NaN: no signal measured)
    trace: jax.Array  # tr(Sigma): one example's gradient variance, summed over the weights
    signal: jax.Array  # |G|^2: the mean gradient's squared norm, unbiased, >= TINY
    snr: dict  # {'layers/0': |G_l|^2 / tr(Sigma_l), ...}: each weight matrix's (steps' names)


def make_gradient_noise(loss: Callable, population: float = float("inf")) -> Callable:
    """`(params, batch) -> GradientNoise` of `loss(params, (x, y)) -> (loss,
    aux)` (a mean over its batch, as `steps.TrainStep.loss`) from each
    example's gradient (see the module docstring); `population`: N, the
    training set's size, that the batch's n examples were taken from."""

    def one_example(params, x, y):
        return jax.grad(loss, has_aux=True)(params, (x[None], y[None]))[0]

    def measure(params, batch):
        x, y = batch
        grads = jax.vmap(one_example, in_axes=(None, 0, 0))(params, x, y)  # (n, *leaf)
        n = len(y)
        noise_per_trace = (1 - n / population) / n  # the mean's noise, per unit of tr(Sigma)
        leaves = jax.tree_util.tree_leaves_with_path(grads)
        traces = [g.var(0, ddof=1).sum() for _, g in leaves]
        raw = [jnp.square(g.mean(0)).sum() for _, g in leaves]  # |g|^2: biased
        trace = sum(traces)
        corrected = sum(raw) - noise_per_trace * trace
        signal = jnp.maximum(corrected, TINY)
        # No signal above the estimate's own noise: B_simple is not measured.
        b_simple = jnp.where(corrected > 0, trace / signal, jnp.nan)
        snr = {
            nets.param_name(path).removesuffix("/kernel"): (
                jnp.maximum(r - noise_per_trace * t, TINY) / jnp.maximum(t, TINY)
            )
            for (path, _), t, r in zip(leaves, traces, raw, strict=True)
            if nets.param_name(path).endswith("/kernel")
        }
        return GradientNoise(b_simple, trace, signal, snr)

    return measure


def critical_batch(batch_sizes, steps) -> tuple[float, float] | None:
    """(S_min, B_crit): McCandlish et al.'s steps-to-target against the batch
    size, S(B) = S_min (1 + B_crit / B), fitted by least squares (it is
    linear in 1 / B) to the `steps` measured at `batch_sizes`. Below B_crit
    doubling the batch nearly halves the steps; above it the steps stop
    falling, towards S_min. None with fewer than two batch sizes or where
    the steps do not fall with the batch (no S_min > 0, B_crit > 0 fits)."""
    sizes, steps = np.asarray(batch_sizes, np.float64), np.asarray(steps, np.float64)
    if len(np.unique(sizes)) < 2:
        return None
    (s_min, slope), *_ = np.linalg.lstsq(np.stack([np.ones_like(sizes), 1 / sizes], 1), steps)
    if s_min <= 0 or slope <= 0:
        return None
    return float(s_min), float(slope / s_min)

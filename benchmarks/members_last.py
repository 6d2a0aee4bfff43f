"""What the members axis's place costs: the sweep's program against the same
nets' step written by hand with the members axis last.

    python benchmarks/members_last.py                   # about a minute
    python benchmarks/members_last.py --quick           # seconds: checks that it runs

The net is the PyTorch peer's (2-4-1 sigmoid, MSE, SGD 1.0, XOR's four
points: benchmarks/sweep.py). `program` times what `train.py` runs for
`--config.num_seeds=N` (`jax.vmap` of one network's step: every array
`[N, ...]`, the members axis first); `members_last` times the same
arithmetic written for all members at once with the members axis last
(`w1 [2, 4, N]`), so that each multiply-add runs across neighbouring
members, as vector instructions do best. Both are fused loops of the
same number of steps from the same weights, alternated, `--repeats`
times; prints JSON with each one's member-steps/s (median),
`members_last_over_program`, and `max_weight_difference`: how far apart
the two's weights are after their first chunk (the same nets, trained
alike: float32 rounding apart).
`members_last` is a measurement, not something train.py can run: `vmap`
moves the members axis first (its batching rules), and docs/speed.md says
why the project keeps it there.
"""

import argparse
import json
import statistics
import time

from common import Timer, build, sizes_arguments  # benchmarks/common.py: first, it sets up the path

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from sweep import peer_config  # noqa: E402  (benchmarks/sweep.py, beside this script)

from training import steps  # noqa: E402

X = jnp.array([[0, 0], [0, 1], [1, 0], [1, 1]], jnp.float32)
Y = jnp.array([[0], [1], [1], [0]], jnp.float32)


def losses(params):
    """Every member's MSE, summed (each member's gradient is its own loss's)."""
    w1, b1, w2, b2 = params  # [2, 4, N], [4, N], [4, 1, N], [1, N]
    hidden = jax.nn.sigmoid((X[:, :, None, None] * w1).sum(1) + b1)  # [4 examples, 4, N]
    out = jax.nn.sigmoid((hidden[:, :, None, :] * w2).sum(1) + b2)  # [4 examples, 1, N]
    return jnp.sum(jnp.mean((out - Y[:, :, None]) ** 2, axis=(0, 1)))


def members_last(params) -> tuple:
    """The program's weights (nnx.State, each leaf [N, ...]) as (w1, b1, w2, b2), each [..., N]."""
    layers = params["layers"]
    leaves = [layers[i][name][...] for i in (0, 1) for name in ("kernel", "bias")]
    return tuple(jnp.moveaxis(a, 0, -1) for a in leaves)


def members_last_loop(params, num_steps: int):
    """The compiled loop of `num_steps` SGD steps (learning rate 1.0) for `params`' shapes."""

    def train(params):
        step = lambda _, p: jax.tree.map(lambda a, g: a - g, p, jax.grad(losses)(p))  # noqa: E731
        return jax.lax.fori_loop(0, num_steps, step, params)

    return jax.jit(train).lower(params).compile(steps.compiler_options())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sizes, work, repeats, args = sizes_arguments(parser)
    results = {}
    for n in sizes:
        chunk = max(10, int(work / n))
        built = build(peer_config(n))
        params = members_last(built.state.params)
        loop = members_last_loop(params, chunk)
        # The first chunk of each, from the same weights (also a warm-up).
        params = jax.block_until_ready(loop(params))
        trained = built.train(built.copy(built.state), built.diverged_at, chunk)[0]
        difference = max(float(jnp.max(jnp.abs(a - b))) for a, b in
                         zip(members_last(trained.params), params, strict=True))  # fmt: skip
        timer = Timer(built)
        ours, last = [], []
        for _ in range(repeats):  # alternated
            ours.append(n * chunk / timer.run(chunk))
            start = time.perf_counter()
            params = jax.block_until_ready(loop(params))
            last.append(n * chunk / (time.perf_counter() - start))
        ours_s, last_s = statistics.median(ours), statistics.median(last)
        results[str(n)] = {
            "steps_per_chunk": chunk,
            "program_member_steps_per_second": round(ours_s),
            "members_last_member_steps_per_second": round(last_s),
            "members_last_over_program": round(last_s / ours_s, 2),
            "max_weight_difference": difference,
        }
    print(json.dumps({"benchmark": "members_last", "backend": jax.default_backend(),
                      "sizes": results, "quick": args.quick}))  # fmt: skip


if __name__ == "__main__":
    main()

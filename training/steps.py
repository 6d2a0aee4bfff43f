"""The jitted pieces of training: the step, the fused loop, evaluation.

Everything here is a pure function of arrays, built once per run by a
factory that binds the static parts (graph definition, loss, optimizer):

- `make_train_step`: `(state, (x, y)) -> (state, metrics)`, one update.
- `make_train_loop`: `(state, (x, y), n) -> (state, metrics)`, n updates in
  ONE compiled call. The whole dataset is resident on the device; with a
  batch size, each step gathers its minibatch from it, in an order
  reshuffled every epoch by `jax.random`, so no step waits for the host.
- `make_evaluate`: `(params, (x, y)) -> (metrics, confusion matrix)` over a
  whole split, in batches of `eval_batch_size` inside one compiled call.
"""

import functools
from typing import NamedTuple

import jax
import jax.extend
import jax.numpy as jnp
import optax
from flax import nnx, struct

import data
from training import losses


class TrainState(struct.PyTreeNode):
    """All mutable training state, one pytree: what a step reads and returns."""

    step: jax.Array  # updates done so far
    params: nnx.State  # the model's nnx.Param variables
    opt_state: optax.OptState


def layer_grad_norms(grads: nnx.State) -> dict[str, jax.Array]:
    """{'grad_norm/layers/0': |dL/dW_0|, ...}, one per weight matrix or kernel.

    Vanishing gradients show here: with sigmoid in a deep stack the first
    layer's norm is orders of magnitude below the last one's.
    """
    norms = {}
    for path, g in jax.tree_util.tree_leaves_with_path(grads):
        name = jax.tree_util.keystr(path, simple=True, separator="/").removesuffix("/value")
        if name.endswith("/kernel"):
            norms["grad_norm/" + name.removesuffix("/kernel")] = jnp.linalg.norm(g)
    return norms


class Update(NamedTuple):
    """What one step computed on the way to its new state."""

    loss: jax.Array
    logits: jax.Array
    grads: nnx.State
    updates: nnx.State


class TrainStep:
    """The pure step `(state, (x, y)) -> (state, metrics)`, and its two halves.

    `update(state, batch) -> (new state, Update)` is the step itself;
    `metrics(state, batch, Update) -> dict` what it logs. The fused loop
    calls them apart, so it computes the metrics only at the steps it
    reports: on small nets they cost more than the step itself.
    """

    def __init__(self, graphdef, loss_fn, optimizer, learning_rate, batch_sharding=None):
        self.graphdef, self.loss_fn = graphdef, loss_fn
        self.optimizer = optimizer
        self.learning_rate = learning_rate  # (opt_state, step) -> rate (optimizers.py)
        self.batch_sharding = batch_sharding  # split the batch over devices (parallel.py)

    def __call__(self, state: TrainState, batch):
        new_state, update = self.update(state, batch)
        return new_state, self.metrics(state, batch, update)

    def update(self, state: TrainState, batch) -> tuple[TrainState, Update]:
        if self.batch_sharding is not None:  # data parallel: each device its rows
            batch = jax.lax.with_sharding_constraint(batch, self.batch_sharding)
        x, y = batch

        # The named scopes group the GRAPHS dashboard (and profiler traces).
        def compute_loss(params):
            with jax.named_scope("model"):
                logits = nnx.merge(self.graphdef, params)(data.to_inputs(x))
            with jax.named_scope("loss"):
                return self.loss_fn(logits, y), logits

        (loss, logits), grads = jax.value_and_grad(compute_loss, has_aux=True)(state.params)
        with jax.named_scope("optimizer"):
            updates, opt_state = self.optimizer.update(grads, state.opt_state, state.params)
            params = optax.apply_updates(state.params, updates)
        new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state)
        return new_state, Update(loss, logits, grads, updates)

    def metrics(self, state: TrainState, batch, update: Update) -> dict[str, jax.Array]:
        """Every metric describes update number state.step + 1 and the weights
        it started from (those that produced the loss)."""
        with jax.named_scope("metrics"):
            return {
                "loss": update.loss,
                **losses.task_metrics(update.logits, batch[1]),
                "learning_rate": self.learning_rate(state.opt_state, state.step),
                "grad_norm": optax.tree.norm(update.grads),
                "update_norm": optax.tree.norm(update.updates),
                "param_norm": optax.tree.norm(state.params),
                **layer_grad_norms(update.grads),
            }


def make_train_step(graphdef, loss_fn, optimizer, learning_rate, batch_sharding=None) -> TrainStep:
    """The step for this model, loss and optimizer (see TrainStep)."""
    return TrainStep(graphdef, loss_fn, optimizer, learning_rate, batch_sharding)


class Batches:
    """Which examples step s trains on: all of them, or a shuffled minibatch.

    With `batch_size` b > 0 (and n examples), an epoch is n // b steps (the
    last n % b examples of each shuffled order sit that epoch out); epoch e
    uses the permutation drawn from `fold_in(key, e)`, so the order depends
    only on the seed and the step, and a resumed run sees the same batches.
    """

    def __init__(self, num_examples: int, batch_size: int, key: jax.Array):
        self.full = batch_size == 0
        self.size = num_examples if self.full else batch_size
        self.steps_per_epoch = max(num_examples // self.size, 1)
        self._n = num_examples
        self._key = key

    def order(self, step: jax.Array) -> jax.Array:
        """The permutation of the epoch that contains `step`."""
        return jax.random.permutation(
            jax.random.fold_in(self._key, step // self.steps_per_epoch), self._n
        )

    def take(self, arrays, order: jax.Array, step: jax.Array):
        """Step `step`'s minibatch of `arrays` (each indexed on axis 0)."""
        if self.full:
            return arrays
        start = (step % self.steps_per_epoch) * self.size
        index = jax.lax.dynamic_slice_in_dim(order, start, self.size)
        return jax.tree.map(lambda a: jnp.take(a, index, axis=0), arrays)


def _zeros(shapes):
    return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)


def make_train_loop(train_step: TrainStep, batches: Batches, stop_at_nan: bool = True):
    """Returns `(state, (x, y), n) -> (state, metrics)`: n steps in one call.

    `(x, y)` is the whole training split, on the device. `n` is a traced
    number, so one compilation (one loop body) serves every chunk length,
    and how a run is cut into chunks changes no bit of it. Only the last
    step computes every metric (a `lax.cond`); the others, the loss.
    With `stop_at_nan`, the first step that makes the loss or a weight
    NaN/Inf ends the call, with its state and all its metrics. Without
    (sweeps.py: under vmap a per-member condition becomes a select, so
    every member would compute every metric at every step), a bad member
    just goes on in NaN.
    """

    def train_loop(state, dataset, num_steps):
        example = batches.take(dataset, jnp.arange(len(dataset[1])), state.step)
        _, metrics_shape = jax.eval_shape(train_step, state, example)
        zeros = _zeros(metrics_shape)
        order = None if batches.full else batches.order(state.step)

        def keep_going(carry):
            _, _, ok, _, i = carry
            return (i < num_steps) & ok

        def one_step(carry):
            state, _, _, order, i = carry
            if not batches.full:  # a new epoch: a new order
                new_epoch = state.step % batches.steps_per_epoch == 0
                order = jax.lax.cond(new_epoch, batches.order, lambda _: order, state.step)
            batch = batches.take(dataset, order, state.step)
            new, update = train_step.update(state, batch)
            ok = jnp.array(True)
            if stop_at_nan:  # the weights' norm overflows first, as the metrics' norms would
                ok = jnp.isfinite(update.loss) & jnp.isfinite(optax.tree.norm(new.params))
            metrics = jax.lax.cond(
                (i == num_steps - 1) | ~ok,
                lambda: train_step.metrics(state, batch, update),
                lambda: {**zeros, "loss": update.loss},
            )
            return new, metrics, ok, order, i + 1

        carry = (state, zeros, jnp.array(True), order, 0)
        state, metrics, _, _, _ = jax.lax.while_loop(keep_going, one_step, carry)
        return state, metrics

    return train_loop


# XLA:CPU (jaxlib 0.10) hands convolutions and dots to its YNNPACK library
# by default. For this project's training programs it is the slower choice
# (benchmarks, same process, alternating): the CNN step ran its
# convolutions on one core of two, 2,050 images/s against 3,900 without
# it; the XOR loop ran 371,000 steps/s against 444,000; the maxout MLP
# 636 steps/s against 670. So every program is compiled without it on CPU.
_CPU_COMPILER_OPTIONS = {"xla_cpu_experimental_ynn_fusion_type": ""}


@functools.cache
def compiler_options() -> dict | None:
    """The options for `.compile()` of each program a run compiles (above).

    None on other backends, and where this jaxlib does not know the
    (experimental) option: programs then compile with XLA's defaults,
    slower but the same, rather than failing.
    """
    if jax.default_backend() != "cpu":
        return None
    try:
        jax.jit(lambda x: x + 1).lower(0.0).compile(_CPU_COMPILER_OPTIONS)
    except jax.errors.JaxRuntimeError:
        return None
    return _CPU_COMPILER_OPTIONS


def uses_convolutions(train_step, state, batch) -> bool:
    """Whether the step's program convolves (it is traced, not run)."""
    jaxpr = jax.make_jaxpr(train_step)(state, batch)
    found = []

    def visit(jaxpr):
        for eqn in jaxpr.eqns:
            found.append(eqn.primitive.name == "conv_general_dilated")
            for sub in jax.extend.core.jaxprs_in_params(eqn.params):
                visit(sub)

    visit(jaxpr.jaxpr)
    return any(found)


def compile_train_loop(
    train_step, batches: Batches, state: TrainState, dataset, fused: bool, everywhere=None
):
    """Compiles the loop `(state, dataset, n) -> (state, metrics)`, ahead of time.

    fused=True: `make_train_loop`, n steps in one call. fused=False: one
    compiled step per call, dispatched from Python (asynchronously: the
    host queues the steps and waits only at the end). That is for
    convolutions on CPU, which XLA runs about 12x slower inside a loop body
    than outside one (jax-ml/jax#12868: 150 against 1,800 images/s for
    this project's CNN). A stepwise chunk does not stop at the first
    non-finite step; its last step's metrics show it (NaN spreads through
    the weights). `everywhere`: the replicated sharding of the state, for
    the stepwise path's minibatch orders (parallel.py).
    """
    if fused:
        loop = jax.jit(make_train_loop(train_step, batches))
        return loop.lower(state, dataset, 0).compile(compiler_options())
    new_order = jax.jit(
        lambda step: batches.order(step) if not batches.full else jnp.arange(len(dataset[1])),
        out_shardings=everywhere,
    )

    example = batches.take(dataset, jnp.arange(batches.size), state.step)
    _, metrics_shape = jax.eval_shape(train_step, state, example)

    def one_step(state, dataset, order, report):
        batch = batches.take(dataset, order, state.step)
        new_state, update = train_step.update(state, batch)
        # As in the fused loop: every metric only for the step that reports.
        metrics = jax.lax.cond(
            report,
            lambda: train_step.metrics(state, batch, update),
            lambda: {**_zeros(metrics_shape), "loss": update.loss},
        )
        return new_state, metrics

    step = jax.jit(one_step).lower(state, dataset, new_order(0), True)
    step = step.compile(compiler_options())
    # Several CPU devices: XLA:CPU's in-process all-reduce deadlocked when
    # steps queued up asynchronously (a CNN on 2 host devices, 2 cores).
    one_at_a_time = jax.default_backend() == "cpu" and len(jax.tree.leaves(state)[0].devices()) > 1

    def train_loop(state, dataset, num_steps):
        first = int(state.step)
        last = first + int(num_steps) - 1
        order = new_order(first)
        metrics = None
        for s in range(first, last + 1):
            if not batches.full and s % batches.steps_per_epoch == 0 and s != first:
                order = new_order(s)
            state, metrics = step(state, dataset, order, s == last)
            if one_at_a_time:
                jax.block_until_ready(metrics)
        return state, metrics

    train_loop.compiled = step  # the one compiled step, for a look at its program
    return train_loop


def make_evaluate(
    graphdef,
    loss_fn,
    num_examples: int,
    num_classes: int,
    batch_size: int,
    summed_loss: bool,
    batch_sharding=None,
):
    """Returns `(params, (x, y)) -> (metrics, confusion)` over a whole split.

    The split is cut into `num_examples // batch_size` full batches, run by
    `lax.map` (one compiled loop, memory of one batch), plus one remainder
    batch; metrics are weighted by batch size, so each is the mean over all
    examples (the loss is summed instead when `summed_loss`, as `sse` is).
    `confusion[i, j]` counts examples of class i predicted as j (for a
    classifier; an empty (0, 0) array for a regression). With a
    `batch_sharding`, full batches are split over the devices.
    """
    batch_size = min(batch_size, num_examples) if batch_size > 0 else num_examples
    full, rest = divmod(num_examples, batch_size)

    if batch_sharding is not None and batch_size % batch_sharding.mesh.size:
        batch_sharding = None  # uneven: each device evaluates every row

    def one_batch(params, x, y, split=False):
        if split and batch_sharding is not None:
            x, y = jax.lax.with_sharding_constraint((x, y), batch_sharding)
        logits = nnx.merge(graphdef, params)(data.to_inputs(x))
        metrics = {"loss": loss_fn(logits, y), **losses.task_metrics(logits, y)}
        if num_classes:
            predicted = losses.predictions(logits)
            confusion = jnp.zeros((num_classes, num_classes), jnp.int32).at[y, predicted].add(1)
        else:
            confusion = jnp.zeros((0, 0), jnp.int32)
        return metrics, confusion

    def evaluate(params, split):
        x, y = split
        head = lambda a: a[: full * batch_size].reshape(full, batch_size, *a.shape[1:])  # noqa: E731
        metrics, confusion = jax.lax.map(
            lambda b: one_batch(params, *b, split=True), (head(x), head(y))
        )
        confusion = jnp.sum(confusion, axis=0)
        # Means of batches, weighted by their sizes; a summed loss just adds up.
        total = lambda k, m, size: m if (k == "loss" and summed_loss) else m * size  # noqa: E731
        metrics = {k: jnp.sum(total(k, m, batch_size), axis=0) for k, m in metrics.items()}
        if rest:
            last, last_confusion = one_batch(params, x[-rest:], y[-rest:])
            metrics = {k: m + total(k, last[k], rest) for k, m in metrics.items()}
            confusion = confusion + last_confusion
        metrics = {
            k: m if (k == "loss" and summed_loss) else m / num_examples for k, m in metrics.items()
        }
        return metrics, confusion

    return evaluate

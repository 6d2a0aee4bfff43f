"""The jitted pieces of training: the step, the loop, evaluation.

Everything here is a pure function of arrays, built once per program by a
factory that binds the static parts (graph definition, loss, optimizer):

- `TrainStep`: `(state, (x, y)) -> (state, metrics)`, one update of ONE
  network: the code a reader studies.
- `MembersStep`: that step for every member of a run at once (`jax.vmap`
  over a leading members axis; a single run is one member), with a
  single run's check that stops at the step whose numbers become NaN/Inf.
- `train_loop`: n such steps in ONE compiled call (a
  `lax.while_loop`). The whole dataset is resident on the device; with a
  batch size, each step gathers its minibatch from it, in an order
  reshuffled every epoch by `jax.random`, so no step waits for the host.
- `make_evaluate`: `(params, (x, y)) -> (metrics, confusion matrix)` over a
  whole split, in batches of `eval_batch_size` inside one compiled call.
"""

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.extend
import jax.numpy as jnp
import optax
from flax import nnx, struct

import nets
from training import losses


class TrainState(struct.PyTreeNode):
    """All mutable training state, one pytree: what a step reads and returns."""

    step: jax.Array  # updates done so far
    params: nnx.State  # the model's nnx.Param variables
    opt_state: optax.OptState
    # With dropout: the key data its masks come from, fold_in(key, step) at
    # each step, so a resumed run draws the same masks. None: no dropout.
    dropout_key: jax.Array | None = None


def layer_grad_norms(grads: nnx.State) -> dict[str, jax.Array]:
    """{'grad_norm/layers/0': |dL/dW_0|, ...}, one per weight matrix or kernel.

    Vanishing gradients show here: with sigmoid in a deep stack the first
    layer's norm is orders of magnitude below the last one's.
    """
    norms = {}
    for path, g in jax.tree_util.tree_leaves_with_path(grads):
        name = nets.param_name(path)
        if name.endswith("/kernel"):
            norms["grad_norm/" + name.removesuffix("/kernel")] = jnp.linalg.norm(g)
    return norms


def weight_matrices(params: nnx.State) -> list[jax.Array]:
    """The weight matrices and convolution kernels: what regularization
    penalises (not the biases, nor maxout's lines)."""
    leaves = jax.tree_util.tree_leaves_with_path(params)
    return [v for path, v in leaves if nets.param_name(path).endswith("/kernel")]


class Penalty(NamedTuple):
    """L1 and L2 regularization: `l1 * sum |w| + l2 * sum w^2 / 2` over the
    kernels, added to the data loss (the Playground's definitions)."""

    l1: float = 0.0
    l2: float = 0.0

    def __call__(self, params: nnx.State) -> jax.Array:
        total = jnp.zeros(())
        for w in weight_matrices(params):
            if self.l1:
                total += self.l1 * jnp.sum(jnp.abs(w))
            if self.l2:
                total += self.l2 * 0.5 * jnp.sum(w * w)
        return total


class LossParts(NamedTuple):
    """What the loss is made of (`TrainStep.loss`)."""

    data: jax.Array  # the data loss: the network's outputs against the targets
    outputs: jax.Array  # the network's outputs (logits, for a classifier)
    penalty: jax.Array | None  # the regularization added to it (None: none)


class Update(NamedTuple):
    """What one step computed on the way to its new state."""

    loss: jax.Array  # the data loss (regularization apart)
    logits: jax.Array
    grads: nnx.State
    updates: nnx.State
    penalty: jax.Array | None = None  # the regularization added to it


class TrainStep:
    """The pure step `(state, (x, y)) -> (state, metrics)` of ONE network.

    `loss(params, batch)` is what it minimises; `update(state, batch) ->
    (new state, Update)` is the step itself; `metrics(state, batch, Update)
    -> dict` what it logs. The fused loop calls the last two apart, so it
    computes the metrics only at the steps it reports (from their own
    update): on small nets they cost more than the step itself.
    """

    def __init__(
        self, graphdef, loss_fn, optimizer, learning_rate, batch_sharding=None, penalty=None
    ):
        self.graphdef, self.loss_fn = graphdef, loss_fn
        self.penalty = penalty if penalty and (penalty.l1 or penalty.l2) else None  # Penalty
        self.optimizer = optimizer
        self.learning_rate = learning_rate  # (opt_state, step) -> rate (optimizers.py)
        self.batch_sharding = batch_sharding  # split the batch over devices (parallel.py)

    def __call__(self, state: TrainState, batch):
        new_state, update = self.update(state, batch)
        return new_state, self.metrics(state, batch, update)

    def loss(self, params: nnx.State, batch, **dropout) -> tuple[jax.Array, LossParts]:
        """`(data loss + penalty, LossParts)` of the network with `params` on
        `batch` (`dropout`: its `dropout_key`, when training)."""
        x, y = batch
        # The named scopes group the GRAPHS dashboard (and profiler traces).
        with jax.named_scope("model"):
            outputs = nets.apply(self.graphdef, params, x, **dropout)
        with jax.named_scope("loss"):
            loss = self.loss_fn(outputs, y)
            if self.penalty is None:
                return loss, LossParts(loss, outputs, None)
            penalty = self.penalty(params)
            return loss + penalty, LossParts(loss, outputs, penalty)

    def update(self, state: TrainState, batch) -> tuple[TrainState, Update]:
        if self.batch_sharding is not None:  # data parallel: each device its rows
            batch = jax.lax.with_sharding_constraint(batch, self.batch_sharding)
        dropout = {}  # the keyword only where there is dropout: any model takes x alone
        if state.dropout_key is not None:
            key = jax.random.wrap_key_data(state.dropout_key)
            dropout = {"dropout_key": jax.random.fold_in(key, state.step)}

        gradient = jax.value_and_grad(self.loss, has_aux=True)
        (_, parts), grads = gradient(state.params, batch, **dropout)
        with jax.named_scope("optimizer"):
            updates, opt_state = self.optimizer.update(grads, state.opt_state, state.params)
            params = optax.apply_updates(state.params, updates)
        new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state)
        return new_state, Update(parts.data, parts.outputs, grads, updates, parts.penalty)

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
                **({} if update.penalty is None else {"regularization": update.penalty}),
            }


class Batches:
    """Which examples step s trains on: all of them, or a shuffled minibatch.

    With `batch_size` b > 0 (and n examples), an epoch is n // b steps (the
    last n % b examples of each shuffled order sit that epoch out); epoch e
    uses the permutation drawn from `fold_in(key, e)`, where `key` is the
    member's, so the order depends only on the seed and the step, and a
    resumed run sees the same batches.
    """

    def __init__(self, num_examples: int, batch_size: int):
        self.full = batch_size == 0
        self.size = num_examples if self.full else batch_size
        self.steps_per_epoch = max(num_examples // self.size, 1)
        self._n = num_examples

    def order(self, key: jax.Array, step: jax.Array) -> jax.Array:
        """The permutation of the epoch that contains `step`."""
        epoch = step // self.steps_per_epoch
        return jax.random.permutation(jax.random.fold_in(key, epoch), self._n)

    def take(self, arrays, order: jax.Array, step: jax.Array):
        """Step `step`'s minibatch of `arrays` (each indexed on axis 0)."""
        if self.full:
            return arrays
        start = (step % self.steps_per_epoch) * self.size
        index = jax.lax.dynamic_slice_in_dim(order, start, self.size)
        return jax.tree.map(lambda a: jnp.take(a, index, axis=0), arrays)


def where_members(alive: jax.Array, new, old):
    """Leaf by leaf, member m of `new` where alive[m], else of `old`."""

    def pick(a, b):
        return jnp.where(alive.reshape(alive.shape + (1,) * (a.ndim - 1)), a, b)

    return jax.tree.map(pick, new, old)


class MembersStep:
    """One update of every member: the one-network `TrainStep`, `jax.vmap`ped.

    `(state, diverged_at, dataset, orders) -> (state, diverged_at)`. Every
    leaf of `state` has a leading members axis (a single run is one
    member); `dataset` is shared; `orders` holds each member's epoch
    permutation (None for full batches). It computes no metrics;
    `reported` is the same step with every metric of its update, for the
    steps that report them (on small nets the metrics cost more than the
    step itself).

    With `stop_at_nan` (a single run), the step whose loss or weights
    become NaN/Inf sets `diverged_at` to its number and is not taken: the
    weights stay those it started from, its metrics say what went NaN,
    and the loop ends there. A sweep's members are checked only at the
    reported steps instead (`reported` marks `diverged_at` on the device;
    training/actions.py resets a diverged member to its last good
    weights), which costs its steps nothing: on small nets a check at
    every step cost a quarter of the step.

    `unroll`: the members one after another in the program instead of
    vmapped. For convolutions on CPU: vmapped over the members' kernels, a
    convolution becomes a grouped one, which XLA:CPU runs 3x slower.

    `split_step` >= 0: each member holds two minibatch-order keys, its
    parent's and its own, and draws its batches with the parent's before
    that step and with its own from it on (config.split_step: two members
    that are one network until then, on two data orders after).
    """

    def __init__(self, train_step: TrainStep, batches: Batches, unroll=False, stop_at_nan=True,
                 split_step: int = -1):  # fmt: skip
        self.train_step, self.batches, self.unroll = train_step, batches, unroll
        self.stop_at_nan, self.split_step = stop_at_nan, split_step

    def orders(self, keys: jax.Array, step: jax.Array) -> jax.Array | None:
        """Each member's permutation for the epoch of `step` (keys: key data)."""
        if self.batches.full:
            return None
        if self.split_step >= 0:  # (members, 2, key): the parent's key, then its own
            keys = jnp.where(step < self.split_step, keys[:, 0], keys[:, 1])
        return jax.vmap(lambda k: self.batches.order(jax.random.wrap_key_data(k), step))(keys)

    def new_orders_at(self, step):
        """Whether step `step` draws new orders: an epoch's first step, or the split."""
        new = step % self.batches.steps_per_epoch == 0
        return new | (step == self.split_step) if self.split_step >= 0 else new

    def _each(self, fn, *args, in_axes=0):
        """fn(member's args) for every member: vmapped, or unrolled (above).
        `in_axes` as jax.vmap's: 0 for the members' own, None for a shared one."""
        if not self.unroll:
            return jax.vmap(fn, in_axes=in_axes)(*args)
        axes = in_axes if isinstance(in_axes, tuple) else (in_axes,) * len(args)
        count = len(jax.tree.leaves(args[0])[0])
        if count == 1:  # reshapes, which XLA makes free (a stack would copy)
            one = fn(*(a if axis is None else jax.tree.map(lambda x: x.reshape(x.shape[1:]), a)
                       for a, axis in zip(args, axes, strict=True)))  # fmt: skip
            return jax.tree.map(lambda x: x.reshape((1, *x.shape)), one)
        each = [
            fn(
                *(
                    a if axis is None else jax.tree.map(lambda x: x[m], a)  # noqa: B023
                    for a, axis in zip(args, axes, strict=True)
                )
            )  # fmt: skip
            for m in range(count)
        ]
        return jax.tree.map(lambda *xs: jnp.stack(xs), *each)

    def _update(self, state, dataset, orders):
        """Every member's next update: `(batch, its in_axes, new state, Update)`."""
        step = state.step[0]  # the same for every member
        if orders is None:  # full batches: the whole dataset, every member's batch
            batch, axes = dataset, (0, None)
        else:  # each member's minibatch, in its own order
            batch = self._each(lambda order: self.batches.take(dataset, order, step), orders)
            axes = (0, 0)
        new, update = self._each(self.train_step.update, state, batch, in_axes=axes)
        return batch, axes, new, update

    def __call__(self, state, diverged_at, dataset, orders):
        _, _, new, update = self._update(state, dataset, orders)
        return self._stop_at_nan(state, diverged_at, new, update)

    def reported(self, state, diverged_at, dataset, orders):
        """The step, and every metric of every member's update
        (`TrainStep.metrics`), from the gradient it takes:
        `(state, diverged_at, metrics)`. A sweep's member with a metric
        that is not finite is marked diverged here, at the step reached
        (the loop's driver resets it to its last good weights)."""
        batch, axes, new, update = self._update(state, dataset, orders)
        metrics = self._each(self.train_step.metrics, state, batch, update, in_axes=(*axes, 0))
        new, diverged_at = self._stop_at_nan(state, diverged_at, new, update)
        if not self.stop_at_nan:
            finite = jnp.all(jnp.stack([jnp.isfinite(v) for v in metrics.values()]), axis=0)
            diverged_at = jnp.where(finite | (diverged_at > 0), diverged_at, new.step)
        return new, diverged_at, metrics

    def _stop_at_nan(self, state, diverged_at, new, update):
        """`(new, diverged_at)`, or with `stop_at_nan` the weights kept and
        `diverged_at` set where the update's loss or weights are not finite."""
        if not self.stop_at_nan:
            return new, diverged_at
        # The weights' norm overflows first, as the metrics' norms would.
        ok = jnp.isfinite(update.loss[0]) & jnp.isfinite(optax.tree.norm(new.params))
        ok &= diverged_at[0] == 0
        diverged_at = jnp.where(ok | (diverged_at > 0), diverged_at, state.step + 1)
        return jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, state), diverged_at

    def next_orders(self, keys: jax.Array, step: jax.Array, orders):
        """The orders step `step` draws from: new ones at an epoch's first
        step (and at the split), else `orders` (None for full batches)."""
        if self.batches.full:
            return None
        return jax.lax.cond(
            self.new_orders_at(step),
            lambda: self.orders(keys, step),
            lambda: orders,
        )


def train_loop(members_step: MembersStep, state, diverged_at, dataset, keys, num_steps):
    """`num_steps` steps of every member in ONE compiled call (jit it with
    `static_argnums=0`): `(state, diverged_at, metrics)` after them, the
    metrics those of the last step.

    `dataset`, `(x, y)`, is the whole training split, on the device; each
    step gathers its minibatches from it, so no step waits for the host.
    `keys` are the members' minibatch-order keys. `num_steps` (at least 1)
    is a traced number, so one compilation serves every chunk length. A
    single run's call ends early at the step that diverged (its metrics
    are then that step's).

    The first `num_steps - 1` steps run in a `lax.while_loop` and compute
    no metrics; the last one, `MembersStep.reported`, after it, computes
    them from its own gradient. (Asked for inside the loop, by a
    `lax.cond`, they cost every step of a sweep of 100,000 small nets a
    quarter of its speed; computed apart, one more gradient per report.)
    The last step is the loop's step with its metrics beside it: XLA
    compiles it to the same bits, so where the reports fall changes no
    bit of a run (tests/test_steps.py checks chunkings on CPU).
    """

    def keep_going(carry):
        _, diverged_at, _, i = carry
        if not members_step.stop_at_nan:  # a sweep: no member's divergence is known here
            return i < num_steps - 1
        return (i < num_steps - 1) & jnp.any(diverged_at == 0)

    def one_step(carry):
        state, diverged_at, orders, i = carry
        orders = members_step.next_orders(keys, state.step[0], orders)
        state, diverged_at = members_step(state, diverged_at, dataset, orders)
        return state, diverged_at, orders, i + 1

    orders = members_step.orders(keys, state.step[0])
    carry = (state, diverged_at, orders, 0)
    state, diverged_at, orders, _ = jax.lax.while_loop(keep_going, one_step, carry)
    orders = members_step.next_orders(keys, state.step[0], orders)
    return members_step.reported(state, diverged_at, dataset, orders)


def stepwise_loop(advance: Callable, last: Callable) -> Callable:
    """`train(state, diverged_at, keys, n) -> (state, diverged_at, metrics)`
    from one-step calls dispatched in turn (`train_loop`'s work, for the
    stepwise path):
    `advance(state, diverged_at, keys, n)` takes n steps, `last(state,
    diverged_at, keys)` one more with its metrics (`MembersStep.reported`)."""

    def train(state, diverged_at, keys, num_steps):
        state, diverged_at = advance(state, diverged_at, keys, num_steps - 1)
        return last(state, diverged_at, keys)

    return train


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
        logits = nets.apply(graphdef, params, x)
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

"""Everything a training program needs, built once from a config and a dataset.

    program = build(group, dataset)   # group: sweeps.groups(config)[i]
    state, diverged_at, metrics = program.train(program.state, program.diverged_at, 100)
    metrics, confusion = program.evaluate(state.params)

`train.py`, the benchmarks and the tests all build their programs here, so
a benchmark times exactly what a run runs. A program trains its members at
once: every leaf of `state`, every metric and `diverged_at` has a leading
members axis (a single run is one member). The step is written for one
network (`steps.TrainStep`) and `jax.vmap`ped over the members.

Devices (training/parallel.py): one member on several devices trains data
parallel (each step's batch split over them); several members are split
over the devices, each whole on one.

Memory (training/memory.py): members that do not fit the device's memory
together train in PARTS, one after another within each chunk, each by the
same program compiled for a part's size; `program.part` says how many. The
parts are sized from XLA's analysis of the compiled program, or capped by
`config.members_per_program`. A run is the same whichever way its members
are split.
"""

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import data
import nets
from plumbing.failures import UserError
from training import curvature, losses, memory, optimizers, parallel, steps
from training.sweeps import Group


class Program(NamedTuple):
    """A group's members, initialised and compiled (see the module docstring)."""

    group: Group
    dataset: data.Dataset
    graphdef: Any  # the model's static half (nnx.split): the same for every member
    state: steps.TrainState  # the members' initial state, stacked
    diverged_at: jax.Array  # (members,) step a member diverged at; 0 = never
    train: Callable  # (state, diverged_at, n) -> (state, diverged_at, metrics): n steps
    evaluate: Callable  # params -> (metrics, confusion) on the eval split, per member
    train_step: steps.TrainStep  # one network's step (GRAPHS draws it)
    first_batch: tuple  # one member's first (x, y) batch
    batches: steps.Batches
    compiled: Any  # the XLA program of the train loop (or of one step, stepwise)
    stepwise: bool  # one compiled step per call (convolutions on CPU), or fused
    reset: Callable  # (state, earlier, members) -> state with those members' weights from earlier
    # state -> (sharpness, learning rate, momentum) per member (probes.sharpness), or None
    sharpness: Callable | None = None
    # How many members one compiled call trains: all of them, unless they do not
    # fit the device's memory together; then they train in parts (training/memory.py).
    part: int = 1

    def member_state(self, state: steps.TrainState, m: int = 0) -> steps.TrainState:
        return jax.tree.map(lambda a: a[m], state)


def num_outputs(config, dataset: data.Dataset) -> int:
    if dataset.is_regression:
        return dataset.y_train.shape[-1]
    return losses.num_outputs(config.loss, dataset.num_classes)


def build(group: Group, dataset: data.Dataset, stepwise: bool | None = None) -> Program:
    """Initialises and compiles `group`'s members for `dataset`.

    Member m's parameters are drawn from `fold_in(key(seed), 0)` and its
    minibatch order from `fold_in(key(seed), 1)`, as a single run's; the
    swept optimizer numbers of its point are set in its optimizer state.
    `stepwise`: one compiled step per call instead of the fused loop; None
    chooses (stepwise for convolutions on CPU, below).
    """
    config, members = group.config, group.members
    if config.batch_size > len(dataset.x_train):
        raise UserError(
            f"batch_size {config.batch_size} is larger than the {len(dataset.x_train)} "
            f"training examples of {config.data.name!r}: use at most that, or 0 for all"
        )
    shape, outputs = dataset.x_train.shape[1:], num_outputs(config, dataset)
    features = nets.feature_names(config.data.features)
    if features != nets.features.PLAIN and shape != (2,):
        raise UserError(
            f"data.features are functions of 2-D points (x1, x2); dataset "
            f"{config.data.name!r} has inputs of shape {shape}: leave data.features at (x1, x2)"
        )
    # The speed kernels measured for this backend (nets/kernels.py): chosen here, once.
    kernels = nets.kernels.for_backend(jax.default_backend())
    abstract = nnx.eval_shape(
        lambda: nets.build_model(config.model, shape, outputs, nnx.Rngs(0), kernels, features)
    )
    graphdef = nnx.split(abstract)[0]
    optimizer, learning_rate = optimizers.make_optimizer(config.optimizer, config.num_steps)
    loss_fn = losses.get_loss(config.loss, config.loss_power)
    mesh = parallel.mesh()
    everywhere, split = parallel.replicated(mesh), parallel.split(mesh)
    batches = steps.Batches(len(dataset.x_train), config.batch_size)
    data_parallel = len(members) == 1 and mesh.size > 1
    if data_parallel:
        parallel.check_divides(batches.size, "the batch", "set --config.batch_size to", mesh)
    elif mesh.size > 1:
        parallel.check_divides(
            len(members), "the members (points x seeds)",
            "choose --config.num_seeds so that points x seeds is", mesh,
        )  # fmt: skip
    on_members = everywhere if data_parallel else split

    free = memory.free_bytes(mesh.local_devices)  # before this program's arrays exist
    if jax.process_count() > 1:  # every process must compile the same parts: only the cap's
        free = math.inf
    seeds = parallel.put(np.array([m.seed for m in members]), on_members)
    numbers = {
        key.split(".")[-1]: np.array([m.point_config.get(key.split(".")[0])[key.split(".")[1]]
                                      for m in members])
        for key in group.vmapped
    }  # fmt: skip
    numbers = parallel.put(numbers, on_members)

    dropout = config.model.dropout > 0

    def init(seed, numbers):
        key = jax.random.key(seed)
        rngs = nnx.Rngs(params=jax.random.fold_in(key, 0))
        model = nets.build_model(config.model, shape, outputs, rngs, kernels, features)
        params = nnx.split(model, nnx.Param)[1]
        opt_state = optimizers.with_hyperparameters(optimizer.init(params), numbers)
        dropout_key = jax.random.key_data(jax.random.fold_in(key, 2)) if dropout else None
        state = steps.TrainState(jnp.array(0), params, opt_state, dropout_key)
        return state, jax.random.key_data(jax.random.fold_in(key, 1))

    shapes = jax.eval_shape(jax.vmap(init), seeds, numbers)[0]
    copies = memory.state_copies(mesh.local_devices)
    memory.check_state(len(members), memory.nbytes(shapes) / len(members), free, mesh.size, copies)
    state, keys = jax.jit(jax.vmap(init), out_shardings=on_members)(seeds, numbers)
    jax.block_until_ready(state)  # out of memory? Now, not at the first summary
    diverged_at = parallel.put(np.zeros(len(members), np.int32), on_members)
    train_data = parallel.put((dataset.x_train, dataset.y_train), everywhere)
    eval_data = parallel.put((dataset.x_eval, dataset.y_eval), everywhere)

    penalty = steps.Penalty(config.regularization.l1, config.regularization.l2)
    train_step = steps.TrainStep(
        graphdef, loss_fn, optimizer, learning_rate, split if data_parallel else None, penalty
    )
    one_state = jax.tree.map(lambda a: a[0], state)
    first_batch = batches.take(train_data, jnp.arange(len(dataset.y_train)), 0)
    # XLA runs convolutions about 12x slower inside a loop body than outside
    # one on CPU (jax-ml/jax#12868: 150 against 1,800 images/s for the CNN):
    # there, one compiled step per call, dispatched from Python.
    if stepwise is None:
        stepwise = jax.default_backend() == "cpu" and steps.uses_convolutions(
            train_step, one_state, first_batch
        )
    # One member is not vmapped at all: its program is one network's step,
    # bit for bit. Convolutions on CPU are unrolled over the members (see
    # steps.MembersStep).
    members_step = steps.MembersStep(
        train_step, batches, stepwise or len(members) == 1, stop_at_nan=group.single
    )
    examples = _examples(config, dataset, everywhere)

    def compile_for(size: int) -> _Compiled:  # the programs for `size` members
        like = lambda tree: _shapes_for(size, tree, on_members)  # noqa: E731
        abstract = like((state, diverged_at, keys))
        if stepwise:
            train, compiled = _stepwise(members_step, *abstract, train_data, everywhere, on_members)
        else:
            loop = jax.jit(steps.make_train_loop(members_step))
            compiled = loop.lower(*abstract[:2], train_data, abstract[2], 0)
            compiled = compiled.compile(steps.compiler_options())

            def train(state, diverged_at, keys, num_steps):
                return compiled(state, diverged_at, train_data, keys, num_steps)

        evaluate = steps.make_evaluate(
            graphdef, loss_fn, len(dataset.y_eval), dataset.num_classes, config.eval_batch_size,
            summed_loss=config.loss == "sse", batch_sharding=split if data_parallel else None,
        )  # fmt: skip
        evaluate = jax.jit(jax.vmap(evaluate, in_axes=(0, None)))
        evaluate = evaluate.lower(like(state.params), eval_data).compile(steps.compiler_options())
        sharpness = _sharpness(config, train_step, like(state), examples)
        programs = [(compiled, train_data), (evaluate, eval_data), (sharpness, examples)]
        return _Compiled(
            train, lambda params: evaluate(params, eval_data),
            sharpness and (lambda state: sharpness(state, examples)), compiled, programs,
        )  # fmt: skip

    # A sweep too big for the device's memory trains in parts (training/memory.py),
    # one after another, with the programs compiled for a part's size. A fused
    # loop is measured on all its members (compiling it takes as long for any
    # number); a CNN on CPU (stepwise, its members unrolled: compiling takes
    # longer the more there are) on 2. An unrolled part of one member compiles
    # to other bits (Adam's second moment of one bias came out 1 ulp apart), so
    # unrolled parts hold two or more.
    n, cap, smallest = len(members), config.members_per_program, 2 if stepwise else 1
    planned = memory.part_size(n, None, math.inf, cap, mesh.size, smallest)  # the cap's
    two = -(-max(2, mesh.size) // mesh.size) * mesh.size  # (a multiple of the devices)
    measured = min(planned, two) if stepwise else planned
    compiled = compile_for(measured)
    need = _need(compiled, measured, state, n, mesh.size, copies) if n > 1 else None
    part = memory.part_size(n, need, free, cap, mesh.size, smallest)
    if part != measured:
        compiled = compile_for(part)
    train = compiled.train
    evaluate, sharpness = compiled.evaluate, compiled.sharpness
    if part < n:
        parts = _Parts(n, part, on_members)
        train, evaluate = parts.over(train, with_steps=True), parts.over(evaluate)
        sharpness = sharpness and parts.over(sharpness)
    return Program(
        group, dataset, graphdef, state, diverged_at,
        lambda state, diverged_at, num_steps: train(state, diverged_at, keys, num_steps),
        evaluate, train_step, first_batch, batches, compiled.compiled, stepwise,
        jax.jit(_reset), sharpness, part,
    )  # fmt: skip


def _shapes_for(members: int, tree, sharding):
    """`tree`'s leaves as abstract arrays of `members` members (for .lower)."""

    def one(a):
        shape = (members, *a.shape[1:])
        return jax.ShapeDtypeStruct(shape, a.dtype, sharding=sharding, weak_type=a.weak_type)

    return jax.tree.map(one, tree)


class _Compiled(NamedTuple):
    """A program's compiled calls for one number of members."""

    train: Callable  # (state, diverged_at, keys, n) -> (state, diverged_at, metrics)
    evaluate: Callable  # params -> (metrics, confusion)
    sharpness: Callable | None  # state -> (sharpness, learning rate, momentum)
    compiled: Any  # the train loop's XLA program
    calls: list  # [(compiled call or None, the data it reads)]: what memory.Need measures


def _need(compiled, size, state, members, devices, copies) -> memory.Need | None:
    """What a member costs, from XLA's analysis of `compiled` (for `size` of
    the `members` whose stacked `state` is given)."""
    shared, per_member = 0.0, 0.0  # every program's data stays on the device
    for call, data_read in compiled.calls:
        if call is None:
            continue
        total = memory.program_bytes(call)
        if total is None:
            return None
        read = memory.nbytes(data_read)
        shared += read
        per_member = max(per_member, (total - read) * devices / size)
    return memory.Need(shared, memory.nbytes(state) / members, per_member, devices, copies)


class _Parts:
    """A call over all `members` made of calls over `part` of them: the
    parts start at 0, part, 2 part, ... and the last one ends at the last
    member (overlapping the one before: its members are computed twice,
    to the same bits), so that one compiled size serves them all."""

    def __init__(self, members: int, part: int, on_members):
        self.part = part
        count = -(-members // part)
        self.starts = [min(i * part, members - part) for i in range(count)]

        def take(tree, start):
            return jax.tree.map(lambda a: jax.lax.dynamic_slice_in_dim(a, start, part), tree)

        def empty(out):  # the whole output, shaped from a part's
            return jax.tree.map(lambda a: jnp.zeros((members, *a.shape[1:]), a.dtype), out)

        def place(whole, out, start):
            return jax.tree.map(
                lambda w, p: jax.lax.dynamic_update_slice_in_dim(w, p, start, 0), whole, out
            )

        self.take = jax.jit(take, out_shardings=on_members)
        self.empty = jax.jit(empty, out_shardings=on_members)
        self.place = jax.jit(place, donate_argnums=0, out_shardings=on_members)

    def over(self, call: Callable, with_steps: bool = False) -> Callable:
        """`call(*member_args[, num_steps])` over every part, outputs placed in one."""

        def whole_call(*args):
            member_args, rest = (args[:-1], args[-1:]) if with_steps else (args, ())
            whole = None
            for start in self.starts:
                start = np.int32(start)  # a host number: the same in every process
                out = call(*self.take(member_args, start), *rest)
                whole = self.place(self.empty(out) if whole is None else whole, out, start)
                del out  # before the next part's call
            return whole

        return whole_call


def _examples(config, dataset, everywhere):
    """The first `probes.examples` training examples (the sharpness's), or None."""
    if not config.probes.sharpness:
        return None
    n = config.probes.examples or len(dataset.y_train)
    return parallel.put((dataset.x_train[:n], dataset.y_train[:n]), everywhere)


def _sharpness(config, train_step: steps.TrainStep, state, examples):
    """The compiled `(state, examples) -> (sharpness, learning rate, momentum)`
    of every member (`state`: abstract, for its shapes); None if not asked for."""
    if not config.probes.sharpness:
        return None
    measure = curvature.make_sharpness(
        train_step.graphdef, train_step.loss_fn, train_step.penalty,
        config.probes.sharpness_iterations,
    )  # fmt: skip

    def probe(state, examples):  # one member
        rate = train_step.learning_rate(state.opt_state, state.step)
        momentum = state.opt_state.hyperparams["momentum"]
        return measure(state.params, examples), rate, momentum

    probe = jax.jit(jax.vmap(probe, in_axes=(0, None))).lower(state, examples)
    return probe.compile(steps.compiler_options())


def _reset(state: steps.TrainState, earlier: steps.TrainState, members: jax.Array):
    """`state` with the weights and optimizer state of `members` (a mask) from `earlier`."""
    keep = ~members
    return state.replace(
        params=steps.where_members(keep, state.params, earlier.params),
        opt_state=steps.where_members(keep, state.opt_state, earlier.opt_state),
    )


def _stepwise(members_step, state, diverged_at, keys, train_data, everywhere, on_members):
    """`train` as one compiled step per call (see `build`), and that step
    (`state`, `diverged_at`, `keys`: abstract, for their shapes).

    The host queues the steps and waits only when the metrics are read.
    """
    batches = members_step.batches
    orders = jax.jit(members_step.orders, out_shardings=everywhere)
    order_shape = jax.eval_shape(members_step.orders, keys, 0)
    if order_shape is not None:
        order_shape = jax.ShapeDtypeStruct(order_shape.shape, order_shape.dtype,
                                           sharding=everywhere)  # fmt: skip
    # Its outputs stay where its inputs are: members split over the devices
    # (left to XLA, a sweep's came back replicated, and the next step refused them).
    step = jax.jit(members_step, out_shardings=on_members)
    step = step.lower(state, diverged_at, train_data, order_shape, jnp.array(True))
    step = step.compile(steps.compiler_options())
    # Several CPU devices: XLA:CPU's in-process all-reduce deadlocked when
    # steps queued up asynchronously (a CNN on 2 host devices, 2 cores).
    one_at_a_time = len(jax.tree.leaves(state)[0].sharding.device_set) > 1

    def train(state, diverged_at, keys, num_steps):
        first = int(state.step[0])
        last = first + int(num_steps) - 1
        order = orders(keys, first)
        metrics = None
        for s in range(first, last + 1):
            if not batches.full and s % batches.steps_per_epoch == 0 and s != first:
                order = orders(keys, s)
            state, diverged_at, metrics = step(
                state, diverged_at, train_data, order, jnp.array(s == last)
            )
            if one_at_a_time:
                jax.block_until_ready(metrics)
        return state, diverged_at, metrics

    return train, step

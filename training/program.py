"""Everything a training program needs, built once from a config and a dataset.

    program = build(group, dataset)   # group: sweeps.groups(config)[i]
    state = program.copy(program.state)  # (train consumes the state it is given)
    state, diverged_at, metrics = program.train(state, program.diverged_at, 100)
    metrics, confusion = program.evaluate(state.params)

(`program.train` consumes the state it is given: the fused loop takes
over its buffers, so a call copies no weights.)

`build` reads top to bottom: check the config against the dataset, place
the arrays (`_Placement`), make one network's step (`make_train_step`),
initialise every member (`create_train_state`), then compile the training
loop (`steps.train_loop`), the evaluation and the probes (the sharpness,
the spectrum, the gradient noise) for as many members as memory holds
(`_Programs.compile`, `_plan_parts`).
`program.train` is that compiled loop.

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
are split, to float rounding (the same bits on CPU where tested, not in
general: docs/design.md).
"""

import functools
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
from training import curvature, gradient_noise, losses, memory, optimizers, parallel, steps
from training.sweeps import Group


class Program(NamedTuple):
    """A group's members, initialised and compiled (see the module docstring)."""

    # What it trains: one network's step (its model, loss and optimizer), on what.
    group: Group
    dataset: data.Dataset
    train_step: steps.TrainStep
    batches: steps.Batches
    first_batch: tuple  # one member's first (x, y) batch (GRAPHS draws the step on it)
    # Its members at step 0: every leaf has a leading members axis.
    state: steps.TrainState
    diverged_at: jax.Array  # (members,) the step each diverged at; 0 = never
    # The compiled calls, each over every member.
    # (state, diverged_at, n) -> (state, diverged_at, metrics): n steps; it consumes `state`
    train: Callable
    evaluate: Callable  # params -> (metrics, confusion) on the eval split
    sharpness: Callable | None  # state -> (sharpness, learning rate, momentum) (probes.sharpness)
    spectrum: Callable | None  # state -> (curvature.Spectrum, rate, momentum) (probes.spectrum)
    gradient_noise: Callable | None  # state -> gradient_noise.GradientNoise (probes.gradient_noise)
    copy: Callable  # tree -> a copy on the device (train consumes the state it is given)
    reset: Callable  # (state, params, members) -> state with those members' weights from params
    # How they were compiled.
    compiled: Any  # the train loop's XLA program (or one step's, stepwise)
    stepwise: bool  # one compiled step per call (convolutions on CPU), or fused
    part: int  # how many members one compiled call trains (training/memory.py)

    @property
    def graphdef(self):
        """The model's static half (nnx.split): the same for every member."""
        return self.train_step.graphdef

    def member_state(self, state: steps.TrainState, m: int = 0) -> steps.TrainState:
        return jax.tree.map(lambda a: a[m], state)


def num_outputs(config, dataset: data.Dataset) -> int:
    if dataset.is_regression:
        return dataset.y_train.shape[-1]
    return losses.num_outputs(config.loss, dataset.num_classes)


def build(group: Group, dataset: data.Dataset, stepwise: bool | None = None,
          part: int | None = None) -> Program:  # fmt: skip
    """Initialises and compiles `group`'s members for `dataset`.

    `stepwise`: one compiled step per call instead of the fused loop; None
    chooses (stepwise for convolutions on CPU, below). `part`: at most this
    many members per call (a resumed run's, so that it trains in the parts
    it trained in: other parts can round otherwise; memory may ask fewer).
    """
    config, members = group.config, group.members
    _check(config, dataset)
    batches = steps.Batches(len(dataset.x_train), config.batch_size)
    where = _Placement.of(len(members), batches)
    free = memory.free_bytes(where.mesh.local_devices)  # before this program's arrays exist
    if jax.process_count() > 1:  # every process must compile the same parts: only the cap's
        free = math.inf
    copies = memory.state_copies(where.mesh.local_devices)
    new_model, train_step = make_train_step(config, dataset, where.batch_sharding)
    state, keys = create_train_state(group, new_model, train_step.optimizer, where, free, copies)
    _check_parameters(config, sum(v.size for v in jax.tree.leaves(state.params)) // len(members))
    diverged_at = parallel.put(np.zeros(len(members), np.int32), where.on_members)
    train_data = parallel.put((dataset.x_train, dataset.y_train), where.everywhere)
    first_batch = batches.take(train_data, jnp.arange(len(dataset.y_train)), 0)
    # XLA runs convolutions about 12x slower inside a loop body than outside
    # one on CPU (jax-ml/jax#12868: 150 against 1,800 images/s for the CNN):
    # there, one compiled step per call, dispatched from Python.
    if stepwise is None:
        stepwise = jax.default_backend() == "cpu" and steps.uses_convolutions(
            train_step, jax.tree.map(lambda a: a[0], state), first_batch
        )
    # One member is not vmapped at all: its program is one network's step,
    # bit for bit. Convolutions on CPU are unrolled over the members (see
    # steps.MembersStep).
    members_step = steps.MembersStep(
        train_step, batches, stepwise or len(members) == 1, stop_at_nan=group.single,
        split_step=config.split_step,
    )  # fmt: skip
    eval_data = parallel.put((dataset.x_eval, dataset.y_eval), where.everywhere)
    examples = _examples(config, dataset, where.everywhere)
    programs = _Programs(config, dataset, members_step, stepwise, where,
                         (train_data, eval_data, examples), (state, diverged_at, keys))  # fmt: skip
    part, compiled = _plan_parts(programs, len(members), state, free, copies, part)
    train, evaluate, sharpness = compiled.train, compiled.evaluate, compiled.sharpness
    spectrum, noise = compiled.spectrum, compiled.gradient_noise
    if part < len(members):
        parts = _Parts(len(members), part, where.on_members)
        train, evaluate = parts.over(train, with_steps=True), parts.over(evaluate)
        sharpness, spectrum = sharpness and parts.over(sharpness), spectrum and parts.over(spectrum)
        noise = noise and parts.over(noise)
    return Program(
        group, dataset, train_step, batches, first_batch, state, diverged_at,
        functools.partial(_train, train, keys),
        evaluate, sharpness, spectrum, noise, _copy, jax.jit(_reset), compiled.compiled, stepwise,
        part,
    )  # fmt: skip


def _train(train: Callable, keys, state, diverged_at, num_steps: int):
    """`Program.train`: `train` (a compiled call's) with the members' keys.
    It consumes `state` (the fused loop's call takes over its buffers)."""
    if num_steps < 1:
        raise ValueError(f"train takes at least one step (its metrics), got {num_steps}")
    return train(state, diverged_at, keys, num_steps)


def _check(config, dataset: data.Dataset) -> None:
    """The config's demands that only the dataset can check, as one-line errors."""
    if config.batch_size > len(dataset.x_train):
        raise UserError(
            f"batch_size {config.batch_size} is larger than the {len(dataset.x_train)} "
            f"training examples of {config.data.name!r}: use at most that, or 0 for all"
        )
    shape = dataset.x_train.shape[1:]
    if nets.feature_names(config.data.features) != nets.features.PLAIN and shape != (2,):
        raise UserError(
            f"data.features are functions of 2-D points (x1, x2); dataset "
            f"{config.data.name!r} has inputs of shape {shape}: leave data.features at (x1, x2)"
        )


def _check_parameters(config, parameters: int) -> None:
    """The config's demands that only the network's size can check (one line)."""
    top_k = config.probes.spectrum_top_k
    if config.probes.spectrum and top_k > parameters:
        raise UserError(
            f"probes.spectrum_top_k={top_k} asks for more eigenvalues than the network's "
            f"{parameters:,} parameters have: use at most {parameters:,}"
        )


class _Placement(NamedTuple):
    """Where a program's arrays live (training/parallel.py): one member on
    several devices trains data parallel (each step's batch split over them);
    several members are split over the devices, each whole on one."""

    mesh: Any
    everywhere: Any  # replicated: the data
    on_members: Any  # the members' state and outputs
    batch_sharding: Any  # a data-parallel step's batch, split; else None

    @staticmethod
    def of(members: int, batches: steps.Batches) -> "_Placement":
        mesh = parallel.mesh()
        everywhere, split = parallel.replicated(mesh), parallel.split(mesh)
        data_parallel = members == 1 and mesh.size > 1
        if data_parallel:
            parallel.check_divides(batches.size, "the batch", "set --config.batch_size to", mesh)
        elif mesh.size > 1:
            parallel.check_divides(
                members, "the members (points x seeds)",
                "choose --config.num_seeds so that points x seeds is", mesh,
            )  # fmt: skip
        on_members = everywhere if data_parallel else split
        return _Placement(mesh, everywhere, on_members, split if data_parallel else None)


def make_train_step(config, dataset: data.Dataset, batch_sharding=None):
    """`(new_model, train_step)`: `new_model(rngs)` builds one network of
    `config.model` for `dataset`; `train_step` trains one such network
    (its graphdef, loss, optimizer and regularization)."""
    shape, outputs = dataset.x_train.shape[1:], num_outputs(config, dataset)
    features = nets.feature_names(config.data.features)
    # The speed kernels measured for this backend (nets/kernels.py): chosen here, once.
    kernels = nets.kernels.for_backend(jax.default_backend())

    def new_model(rngs: nnx.Rngs) -> nnx.Module:
        return nets.build_model(config.model, shape, outputs, rngs, kernels, features)

    graphdef = nnx.split(nnx.eval_shape(lambda: new_model(nnx.Rngs(0))))[0]
    optimizer, learning_rate = optimizers.make_optimizer(config.optimizer, config.num_steps)
    loss_fn = losses.get_loss(config.loss, config.loss_power)
    penalty = steps.Penalty(config.regularization.l1, config.regularization.l2)
    train_step = steps.TrainStep(graphdef, loss_fn, optimizer, learning_rate, batch_sharding,
                                 penalty)  # fmt: skip
    return new_model, train_step


def create_train_state(group: Group, new_model, optimizer, where: _Placement, free, copies):
    """Every member's initial `TrainState` and minibatch-order key, stacked
    (a leading members axis): the Flax examples' `create_train_state`,
    `jax.vmap`ped over the members' seeds.

    Member m's parameters are drawn from `fold_in(key(seed), 0)`, its
    minibatch order from `fold_in(key(seed), 1)` and its dropout masks from
    `fold_in(key(seed), 2)`, as a single run's; the swept optimizer numbers
    of its point are set in its optimizer state. Members whose state alone
    cannot fit `free` bytes are refused first (training/memory.py).

    With `split_step` >= 0, a point's seeds two by two are one network split
    at that step: both members of a pair are drawn from the first one's
    seed (weights, dropout) and hold two order keys, that seed's and their
    own (steps.MembersStep).
    """
    config, members = group.config, group.members
    split = config.split_step >= 0
    seeds = np.array([m.seed for m in members])
    parents = seeds - (seeds - config.seed) % 2 if split else seeds  # seed, seed, seed+2, ...
    seeds, parents = (parallel.put(s, where.on_members) for s in (seeds, parents))
    numbers = {
        key.split(".")[-1]: np.array([m.point_config.get(key.split(".")[0])[key.split(".")[1]]
                                      for m in members])
        for key in group.vmapped
    }  # fmt: skip
    numbers = parallel.put(numbers, where.on_members)
    dropout = config.model.dropout > 0

    def init(seed, parent, numbers):  # one member
        key = jax.random.key(parent)
        params = nnx.split(new_model(nnx.Rngs(params=jax.random.fold_in(key, 0))), nnx.Param)[1]
        opt_state = optimizers.with_hyperparameters(optimizer.init(params), numbers)
        dropout_key = jax.random.key_data(jax.random.fold_in(key, 2)) if dropout else None
        state = steps.TrainState(jnp.array(0), params, opt_state, dropout_key)
        order = jax.random.key_data(jax.random.fold_in(jax.random.key(seed), 1))
        if split:  # the parent's order until the split, its own after
            order = jnp.stack([jax.random.key_data(jax.random.fold_in(key, 1)), order])
        return state, order

    shapes = jax.eval_shape(jax.vmap(init), seeds, parents, numbers)[0]
    per_member = memory.nbytes(shapes) / len(members)
    memory.check_state(len(members), per_member, free, where.mesh.size, copies)
    state, keys = jax.jit(jax.vmap(init), out_shardings=where.on_members)(seeds, parents, numbers)
    jax.block_until_ready(state)  # out of memory? Now, not at the first summary
    return state, keys


class _Programs(NamedTuple):
    """What a program's compiled calls are made of; `compile(size)` compiles
    them for `size` members."""

    config: Any
    dataset: data.Dataset
    members_step: steps.MembersStep
    stepwise: bool
    where: _Placement
    data: tuple  # (train split, eval split, sharpness's examples or None), on the devices
    members: tuple  # (state, diverged_at, keys): every member's, for their shapes

    def compile(self, size: int) -> "_Compiled":
        config, dataset, where = self.config, self.dataset, self.where
        train_data, eval_data, examples = self.data
        train_step = self.members_step.train_step
        like = lambda tree: _shapes_for(size, tree, where.on_members)  # noqa: E731
        state, diverged_at, keys = like(self.members)
        if self.stepwise:
            train, compiled, last = _stepwise(
                self.members_step, state, diverged_at, keys, train_data,
                where.everywhere, where.on_members,
            )  # fmt: skip
        else:
            # The state passed in is donated: its buffers become the loop's
            # (no copy of every member's weights and optimizer state a call).
            block = _block(size, state, where)
            loop = jax.jit(_train_in_blocks, static_argnums=(0, 1), donate_argnums=2,
                           out_shardings=where.on_members)  # fmt: skip
            compiled = loop.lower(block, self.members_step, state, diverged_at, train_data,
                                  keys, 1)  # fmt: skip
            compiled = compiled.compile(steps.compiler_options())

            def train(state, diverged_at, keys, num_steps):
                return compiled(state, diverged_at, train_data, keys, num_steps)

            last = None  # (the loop reports its own last step)

        evaluate = steps.make_evaluate(
            train_step.graphdef, train_step.loss_fn, len(dataset.y_eval), dataset.num_classes,
            config.eval_batch_size, summed_loss=config.loss == "sse",
            batch_sharding=where.batch_sharding,
        )  # fmt: skip
        evaluate = jax.jit(jax.vmap(evaluate, in_axes=(0, None)))
        evaluate = evaluate.lower(state.params, eval_data).compile(steps.compiler_options())
        sharpness = _sharpness(config, train_step, state, examples)
        spectrum = _spectrum(config, train_step, state, examples)
        noise = _gradient_noise(config, train_step, state, examples, len(dataset.y_train))
        calls = [(compiled, train_data), (last, train_data), (evaluate, eval_data),
                 (sharpness, examples), (spectrum, examples), (noise, examples)]  # fmt: skip
        return _Compiled(
            train, lambda params: evaluate(params, eval_data),
            sharpness and (lambda state: sharpness(state, examples)),
            spectrum and (lambda state: spectrum(state, examples)),
            noise and (lambda state: noise(state, examples)), compiled, calls,
        )  # fmt: skip


# On CPU a sweep's members train fastest a block at a time, each block's
# chunk of steps run before the next block's, when a block's weights and
# optimizer state fit the processor's caches: the steps then read them from
# there instead of from memory (100,000 of the README's 2-16-1 nets with
# Adam: 5.6-5.7 M member-steps/s all together, 7.1-7.4 M in blocks of 10,000;
# docs/speed.md). Blocks of an odd size ran slower than all at once (a
# million members in blocks of 10,205: 3.4-3.8 M against 6.1-6.2 M).
BLOCK_BYTES = 8 * 2**20  # a block's state, at most (a first guess, measured good; not tuned)


def _block(size: int, state, where: _Placement) -> int:
    """How many of a call's `size` members train as one block (`size`: all
    at once). On one CPU device, for nets of at most BLOCK_BYTES / 1,024 of
    state and a state of more than four blocks: the most, a multiple of 16,
    whose state fits BLOCK_BYTES, or fewer that divide `size` (no last,
    smaller block: one more loop compiled, of an odd size). Otherwise all
    of them: a state within a few blocks stays in the caches anyway (the
    PyTorch peer's 100,000 nets, 10 MB, ran 4% slower in two blocks), and
    a GPU wants many members at a time."""
    if jax.default_backend() != "cpu" or where.mesh.size > 1:
        return size
    per_member = memory.nbytes(state) / size
    most = int(BLOCK_BYTES // per_member) // 16 * 16
    if most < 1024 or size * per_member <= 4 * BLOCK_BYTES:
        return size
    dividing = [b for b in range(most, most // 2, -16) if size % b == 0]
    return dividing[0] if dividing else most


def _train_in_blocks(block: int, members_step, state, diverged_at, dataset, keys, num_steps):
    """`steps.train_loop` over the members `block` at a time, in one call:
    each block trains the chunk's `num_steps` steps and is written back in
    place before the next block starts. Every member's numbers are its own
    (the step is one network's, vmapped): the same bits as all at once
    where tested (docs/design.md)."""
    members = len(diverged_at)
    if block >= members:
        return steps.train_loop(members_step, state, diverged_at, dataset, keys, num_steps)

    def train(start, size, state, diverged_at):  # the block [start, start + size)
        take = lambda a: jax.lax.dynamic_slice_in_dim(a, start, size)  # noqa: E731
        return steps.train_loop(members_step, jax.tree.map(take, state), take(diverged_at),
                                dataset, jax.tree.map(take, keys), num_steps)  # fmt: skip

    def put(start, whole, part):
        return jax.tree.map(lambda w, p: jax.lax.dynamic_update_slice_in_dim(w, p, start, 0),
                            whole, part)  # fmt: skip

    metrics = jax.eval_shape(lambda *done: train(0, block, *done), state, diverged_at)[2]
    metrics = jax.tree.map(lambda m: jnp.zeros((members, *m.shape[1:]), m.dtype), metrics)

    def one_block(b, done):
        return put(b * block, done, train(b * block, block, *done[:2]))

    full = members // block
    done = jax.lax.fori_loop(0, full, one_block, (state, diverged_at, metrics))
    if members % block:  # the last, smaller block
        done = put(full * block, done, train(full * block, members % block, *done[:2]))
    return done


def _plan_parts(programs: _Programs, n: int, state, free, copies,
                resumed: int | None = None) -> tuple[int, "_Compiled"]:  # fmt: skip
    """How many of the `n` members one compiled call trains, and the calls
    compiled for that many (training/memory.py).

    A sweep too big for the device's memory trains in parts, one after
    another, with the programs compiled for a part's size. A fused loop is
    measured on all its members (compiling it takes as long for any
    number); a CNN on CPU (stepwise, its members unrolled: compiling takes
    longer the more there are) on 2. An unrolled part of one member
    compiles to other bits (Adam's second moment of one bias came out 1 ulp
    apart), so unrolled parts hold two or more.
    """
    cap, devices = programs.config.members_per_program, programs.where.mesh.size
    if resumed:  # the parts it trained in, unless the config now asks smaller ones
        cap = min(cap, resumed) if cap else resumed
    smallest = 2 if programs.stepwise else 1
    planned = memory.part_size(n, None, math.inf, cap, devices, smallest)  # the cap's
    two = -(-max(2, devices) // devices) * devices  # (a multiple of the devices)
    measured = min(planned, two) if programs.stepwise else planned
    compiled = programs.compile(measured)
    need = _need(compiled, measured, state, n, devices, copies) if n > 1 else None
    part = memory.part_size(n, need, free, cap, devices, smallest)
    if part != measured:
        compiled = programs.compile(part)
    return part, compiled


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
    spectrum: Callable | None  # state -> (curvature.Spectrum, learning rate, momentum)
    gradient_noise: Callable | None  # state -> gradient_noise.GradientNoise
    compiled: Any  # the train loop's XLA program
    calls: list  # [(compiled call or None, the data it reads)]: what memory.Need measures


def _need(compiled, size, state, members, devices, copies) -> memory.Need | None:
    """What a member costs, from XLA's analysis of `compiled` (for `size` of
    the `members` whose stacked `state` is given)."""
    shared, per_member = 0.0, 0.0  # every program's data stays on the device
    counted = set()  # (each once: several programs read the same data)
    for call, data_read in compiled.calls:
        if call is None:
            continue
        total = memory.program_bytes(call)
        if total is None:
            return None
        read = memory.nbytes(data_read)
        if id(data_read) not in counted:
            counted.add(id(data_read))
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
    """The first `probes.examples` training examples (the sharpness's, the
    spectrum's and the gradient noise's), or None."""
    probes = config.probes
    if not (probes.sharpness or probes.spectrum or probes.gradient_noise):
        return None
    n = config.probes.examples or len(dataset.y_train)
    return parallel.put((dataset.x_train[:n], dataset.y_train[:n]), everywhere)


def _sharpness(config, train_step: steps.TrainStep, state, examples):
    """The compiled `(state, examples) -> (sharpness, learning rate, momentum)`
    of every member (`state`: abstract, for its shapes); None if not asked for."""
    if not config.probes.sharpness:
        return None
    measure = curvature.make_sharpness(train_step.loss, config.probes.sharpness_iterations)
    return _curvature_probe(measure, train_step, state, examples)


def _spectrum(config, train_step: steps.TrainStep, state, examples):
    """The compiled `(state, examples) -> (curvature.Spectrum, learning rate,
    momentum)` of every member; None if not asked for."""
    probes = config.probes
    if not probes.spectrum:
        return None
    measure = curvature.make_spectrum(train_step.loss, probes.spectrum_iterations,
                                      probes.spectrum_top_k, probes.trace_samples,
                                      probes.density_starts)  # fmt: skip
    return _curvature_probe(measure, train_step, state, examples)


def _gradient_noise(config, train_step: steps.TrainStep, state, examples, population: int):
    """The compiled `(state, examples) -> gradient_noise.GradientNoise` of
    every member in one call (vmapped over them, the examples shared: of the
    `population` training examples); None if not asked for."""
    if not config.probes.gradient_noise:
        return None
    measure = gradient_noise.make_gradient_noise(train_step.loss, population)
    probe = jax.vmap(lambda state, examples: measure(state.params, examples), in_axes=(0, None))
    return jax.jit(probe).lower(state, examples).compile(steps.compiler_options())


def _curvature_probe(measure, train_step: steps.TrainStep, state, examples):
    """`measure(params, examples)` of every member beside its learning rate and
    momentum (what its stability limit needs), in one compiled call: vmapped
    over the members (`state`: abstract, for its shapes), the examples shared."""

    def probe(state, examples):  # one member
        rate = train_step.learning_rate(state.opt_state, state.step)
        momentum = state.opt_state.hyperparams["momentum"]
        return measure(state.params, examples), rate, momentum

    probe = jax.jit(jax.vmap(probe, in_axes=(0, None))).lower(state, examples)
    return probe.compile(steps.compiler_options())


def _reset(state: steps.TrainState, params, members: jax.Array):
    """`state` with the weights of `members` (a mask) from `params` (a
    diverged member's last good ones: its weights are reset after every
    chunk; its optimizer state is left as it is, as nothing it trains
    counts)."""
    return state.replace(params=steps.where_members(~members, state.params, params))


@jax.jit
def _copy(tree):
    """`Program.copy`: `tree`'s arrays copied where they are."""
    return jax.tree.map(jnp.copy, tree)


def _stepwise(members_step, state, diverged_at, keys, train_data, everywhere, on_members):
    """`train` as one compiled step per call (see `build`), that step and
    the last step's (`state`, `diverged_at`, `keys`: abstract, for their
    shapes): n - 1 steps, then the n-th with its metrics
    (`MembersStep.reported`).

    Where dispatch is asynchronous (a GPU) the host queues a sweep's steps
    and waits only when the metrics are read; a single run waits for each
    step, to ask whether it diverged. train.py's XLA:CPU runs each call
    before it returns anyway (plumbing/host_memory.py).
    """
    batches = members_step.batches
    orders = jax.jit(members_step.orders, out_shardings=everywhere)
    order_shape = jax.eval_shape(members_step.orders, keys, 0)
    if order_shape is not None:
        order_shape = jax.ShapeDtypeStruct(order_shape.shape, order_shape.dtype,
                                           sharding=everywhere)  # fmt: skip
    # Its outputs stay where its inputs are: members split over the devices
    # (left to XLA, a sweep's came back replicated, and the next step refused them).
    step, last = (
        # (The state is not donated here: the CNN with AdamW ran about 5% slower.)
        jax.jit(call, out_shardings=on_members)
        .lower(state, diverged_at, train_data, order_shape)
        .compile(steps.compiler_options())
        for call in (members_step, members_step.reported)
    )
    # Several CPU devices: XLA:CPU's in-process all-reduce deadlocked when
    # steps queued up asynchronously (a CNN on 2 host devices, 2 cores).
    one_at_a_time = len(jax.tree.leaves(state)[0].sharding.device_set) > 1

    def advance(state, diverged_at, keys, num_steps):
        first = int(state.step[0])
        order = orders(keys, first) if num_steps else None
        for s in range(first, first + num_steps):
            if not batches.full and members_step.new_orders_at(s) and s != first:
                order = orders(keys, s)
            state, diverged_at = step(state, diverged_at, train_data, order)
            if one_at_a_time:
                jax.block_until_ready(state)
            # A single run's diverging step is not taken (steps.MembersStep),
            # nor any after it: no need to run them (asking costs a copy of
            # one number, and waiting for this step).
            if members_step.stop_at_nan and jax.device_get(diverged_at)[0]:
                break
        return state, diverged_at

    def last_step(state, diverged_at, keys):
        order = orders(keys, int(state.step[0]))
        return last(state, diverged_at, train_data, order)

    return steps.stepwise_loop(advance, last_step), step, last

"""How many members one compiled program may train at once: measured, not guessed.

A sweep's members train in PARTS when all of them at once would not fit
the device's memory (training/program.py). Every member's weights and
optimizer state stay on the device; what a part bounds is the rest, the
memory a compiled step or evaluation needs per member while it runs (on
the Fashion-MNIST CNN on CPU, 40 MB of activations against 10 MB of
state). That number is read from XLA's own analysis of the compiled
program (`compiled.memory_analysis()`), so it is what this model, batch
and backend really take:

    n members in parts of k:  shared + copies * n * state + k * program  <=  USABLE * free
    all n at once:            shared + (copies - 1) * n * state + n * program

per device: `shared` the data the program reads (each device holds all
of it); `state` one member's weights and optimizer state, of which
`copies` stay: the initial state (the landscape's starting point); in
parts, the state before a chunk (also what a member that diverges is
reset to) and the new one the parts' outputs are placed into; and on
CPU the host's copy of what it logs, in the same memory. A whole fused
program is donated the state it trains (its `program` bytes hold it,
output in the same buffers), beside a copy of the weights alone to reset
a member that diverges: one copy fewer, counted as a whole state;
`program` one member's share of a compiled call's arguments, outputs and
temporaries; and `free` what the device has free when the program is
built (GPU: its allocator's limit less what is in use; CPU: the host's
available memory, `MemAvailable`, shared by its devices). Measured on
this 2-core CPU (10,000 XOR nets of 2-128-128-1, 204 KB of state each):
all at once 11.2 GB resident against 12.3 planned, in parts of 2,000
9.2 GB against 9.8; the rest of the memory, 1 - `USABLE`, is for the
process itself and for the allocator's free lists.
"""

import math

import jax
import numpy as np

from plumbing.failures import UserError

USABLE = 0.7  # of the free memory, planned for


def free_bytes(devices) -> float:
    """What each of `devices` has free (the least of them); inf if unknown."""
    free = []
    for device in devices:
        stats = device.memory_stats() if device.platform != "cpu" else None
        if stats and "bytes_limit" in stats:
            free.append(stats["bytes_limit"] - stats.get("bytes_in_use", 0))
    if free:
        return float(min(free))
    if devices and devices[0].platform == "cpu":
        return _available_host_bytes() / len(devices)  # the host's memory is every CPU device's
    return math.inf


def _available_host_bytes() -> float:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except OSError:
        pass
    return math.inf  # not Linux: no limit we can read


def program_bytes(compiled) -> float | None:
    """The memory one call of a compiled program needs on a device (XLA's
    analysis: arguments + outputs + temporaries - what outputs reuse), or
    None where the backend does not say."""
    try:
        stats = compiled.memory_analysis()
    except (NotImplementedError, AttributeError, jax.errors.JaxRuntimeError):
        return None
    if stats is None:
        return None
    return float(
        stats.argument_size_in_bytes + stats.output_size_in_bytes
        + stats.temp_size_in_bytes - stats.alias_size_in_bytes
    )  # fmt: skip


def nbytes(tree) -> int:
    return sum(int(np.prod(a.shape)) * a.dtype.itemsize for a in jax.tree.leaves(tree))


def state_copies(devices) -> int:
    """How many copies of the members' state a run in parts keeps (above)."""
    return 4 if devices and devices[0].platform == "cpu" else 3


class Need:
    """What members cost on each device (see the module docstring)."""

    def __init__(self, shared: float, state: float, program: float, devices: int, copies: int):
        self.shared = shared  # bytes every device holds whatever the members
        self.state = state  # one member's weights and optimizer state
        self.program = program  # one member's share of a compiled call
        self.devices = devices
        self.copies = copies  # of the state, beside a part's program

    def with_parts_of(self, members: int, part: int) -> float:
        """Bytes per device for `members` trained in parts of `part`."""
        copies = self.copies if part < members else self.copies - 1  # (a whole program has 1)
        return self.shared + (copies * members * self.state + part * self.program) / self.devices


def check_state(members: int, state: float, free: float, devices: int, copies: int) -> None:
    """A UserError, before they exist, if the least copies of the members'
    weights and optimizer state (`state` bytes each) a run keeps take more
    than the usable memory."""
    least = (copies - 1) * members * state / devices  # initial, last good weights, state (+host)
    if least > USABLE * free:
        gib, where = 2**30, " per device" if devices > 1 else ""
        whose, fix = "the model's", "try"
        if members > 1:
            whose = f"{members:,} members'"
            fix = "train fewer members (num_seeds, the sweep's values) or"
        raise UserError(
            f"out of memory: {whose} weights and optimizer state, kept {copies - 1} times, take "
            f"{least / gib:.2f} GiB{where}; {USABLE * free / gib:.2f} GiB are usable: {fix} a "
            "smaller model"
        )


def part_size(
    members: int, need: Need | None, free: float, cap: int, devices: int, smallest: int = 1
) -> int:
    """How many of `members` one compiled call trains: all of them unless
    they do not fit, else the largest that fits, evened out over the calls
    (100 members that fit 40 at a time: 3 parts of 34).

    `cap` (config.members_per_program, 0: none) bounds a part; then the
    measured `need` against `free` does, if known. A part is a multiple of
    `devices`, the members split over them, and at least `smallest`.
    Raises UserError when not even that fits.
    """
    smallest = min(members, -(-max(smallest, devices) // devices) * devices)
    largest = members if not cap else max(smallest, cap - cap % devices)
    if need is not None and need.with_parts_of(members, min(largest, members)) > USABLE * free:
        room = USABLE * free - need.with_parts_of(members, 0)
        fit = int(room * devices // need.program) if room > 0 else 0
        fit -= fit % devices
        if fit < smallest:
            gib, where = 2**30, " per device" if devices > 1 else ""
            raise UserError(
                f"out of memory: {members:,} members need "
                f"{need.with_parts_of(members, smallest) / gib:.2f} GiB{where} even {smallest} at "
                f"a time (their weights and optimizer state, kept {need.copies} times, are "
                f"{need.copies * members * need.state / devices / gib:.2f} GiB); "
                f"{USABLE * free / gib:.2f} "
                "GiB are usable: train fewer members (num_seeds, the sweep's values) or a "
                "smaller model"
            )
        largest = min(largest, fit)
    if largest >= members:
        return members
    units, per = members // devices, largest // devices  # in multiples of `devices`
    count = -(-units // per)
    return devices * -(-units // count)

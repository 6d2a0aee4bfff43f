"""Several devices and hosts: one mesh, and where each array lives on it.

With D devices (GPUs, or CPU devices: `XLA_FLAGS=--xla_force_host_platform_device_count=4`)
the mesh has one axis, `data`, of size D:
- a single run is data parallel: parameters, optimizer state and the
  dataset are replicated on every device, and each step's batch is split
  over `data` (`batch_sharding`); XLA inserts the gradient all-reduce;
- a sweep splits its members over `data` (`member_sharding`): N members
  train N / D per device, each whole.
With one device every sharding is trivial and nothing changes.

Several hosts: `initialize()` calls `jax.distributed.initialize` when
`--coordinator_address` (or `JAX_COORDINATOR_ADDRESS`) is given; the mesh
then spans every host's devices, only process 0 writes summaries and
checkpoints, and each process gives the arrays their shards of its own
copy of the data (`put`).
"""

import os

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

from dashboards import summaries
from plumbing.failures import UserError

AXIS = "data"


def initialize(coordinator_address: str, num_processes: int, process_id: int) -> None:
    """Joins a multi-host run when a coordinator is given (else does nothing).

    Each argument falls back to its environment variable: JAX_COORDINATOR_ADDRESS
    (host:port of process 0), JAX_NUM_PROCESSES, JAX_PROCESS_ID.
    """
    address = coordinator_address or os.environ.get("JAX_COORDINATOR_ADDRESS", "")
    if not address:
        return
    num = num_processes or int(os.environ.get("JAX_NUM_PROCESSES", "0"))
    pid = process_id if process_id >= 0 else int(os.environ.get("JAX_PROCESS_ID", "-1"))
    if num < 1 or not 0 <= pid < num:
        raise UserError(
            f"a multi-host run needs --num_processes >= 1 and 0 <= --process_id < it "
            f"(got {num} and {pid}), as well as --coordinator_address={address}"
        )
    # CPU devices of different hosts talk through gloo (GPUs use NCCL regardless).
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(address, num_processes=num, process_id=pid)


def is_writer() -> bool:
    """Whether this process writes summaries and checkpoints (process 0 does)."""
    return jax.process_index() == 0


def writer(log_dir: str):
    """The writer of `log_dir` (summaries.open_writer): process 0 writes the files."""
    return summaries.open_writer(log_dir, owner=is_writer())


def mesh() -> Mesh:
    """Every device of every process on one axis, `data`."""
    # Auto: XLA's partitioner places everything the constraints leave open.
    return jax.make_mesh((jax.device_count(),), (AXIS,), axis_types=(AxisType.Auto,))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def split(mesh: Mesh) -> NamedSharding:
    """Leading axis split over the devices (batch rows, or sweep members)."""
    return NamedSharding(mesh, PartitionSpec(AXIS))


def check_divides(count: int, what: str, fix: str, mesh: Mesh) -> None:
    """A UserError unless `count` rows split evenly over the mesh's devices."""
    devices = mesh.size
    if count % devices:
        verb = "do" if what.startswith("the members") else "does"
        raise UserError(
            f"{what} ({count}) {verb} not split evenly over {devices} devices: {fix} "
            f"a multiple of {devices}, or use fewer devices "
            "(CUDA_VISIBLE_DEVICES, or XLA_FLAGS=--xla_force_host_platform_device_count)"
        )


def put(tree, sharding: NamedSharding):
    """Host arrays (the same in every process) onto the devices, as `sharding` says.

    Each process fills only its own devices' shards, so this works the
    same on one host and on many.
    """

    def one(value):
        value = np.asarray(value)
        return jax.make_array_from_callback(value.shape, sharding, lambda index: value[index])

    return jax.tree.map(one, tree)

"""How many members a compiled call trains: sized from measured bytes (training/memory.py)."""

import math

import jax
import pytest

from plumbing.failures import UserError
from training import memory

# shared 0, 1 byte of state (kept twice beside a part, once beside the whole
# program, which holds the state it trains) and 10 of program per member, one device
NEED = memory.Need(shared=0, state=1, program=10, devices=1, copies=2)


def usable(n):  # the free memory that makes `n` bytes usable
    return n / memory.USABLE


def test_members_that_fit_train_all_at_once():
    assert memory.part_size(100, NEED, usable(1100), 0, 1) == 100  # 100 x 1 + 100 x 10
    assert memory.part_size(100, NEED, usable(1099), 0, 1) == 50
    assert memory.part_size(100, None, math.inf, 0, 1) == 100  # unmeasured: all


def test_members_that_do_not_fit_train_in_even_parts():
    # 2 x 100 bytes of state stay; 400 bytes hold 40 members' programs: 3 parts of 34
    assert memory.part_size(100, NEED, usable(600), 0, 1) == 34
    # the cap alone, and the smaller of the cap and the memory
    assert memory.part_size(100, None, math.inf, 50, 1) == 50
    assert memory.part_size(100, NEED, usable(600), 20, 1) == 20


def test_parts_are_multiples_of_the_devices_and_at_least_the_smallest():
    need = memory.Need(shared=0, state=1, program=10, devices=4, copies=2)
    # per device: 2 x 100 / 4 state + part x 10 / 4 <= 150: 40 fit, 3 parts of 36
    assert memory.part_size(100, need, usable(150), 0, 4) == 36
    assert memory.part_size(100, None, math.inf, 6, 4) == 4
    assert memory.part_size(100, None, math.inf, 1, 1, smallest=2) == 2


def test_members_whose_state_alone_does_not_fit_are_one_clear_error():
    message = r"^out of memory: 100 members need .* even 1 at a time .* train fewer"
    with pytest.raises(UserError, match=message):
        memory.part_size(100, NEED, usable(205), 0, 1)  # room for half a member


def test_the_free_memory_of_this_machine_is_known():
    free = memory.free_bytes(jax.local_devices())
    assert 0 < free < math.inf


def test_members_whose_weights_alone_do_not_fit_fail_before_they_exist(xor_config, tmp_path):
    import train

    xor_config.num_seeds, xor_config.model.hidden_sizes = 10**5, (2048, 2048)  # 5 TB of state
    with pytest.raises(UserError, match=r"^out of memory: 100,000 members' weights and"):
        train.train_and_evaluate(xor_config, str(tmp_path))

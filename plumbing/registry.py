"""Names in configs resolve through registries; mistakes become clear errors.

Every kind of pluggable piece (activations, losses, optimizers, datasets,
models) lives in one plain dict from name to builder. `lookup` is the only
way a config name is resolved, so every unknown name fails the same way:
with a message that lists the valid names.
"""

import difflib
from collections.abc import Mapping
from typing import TypeVar

from plumbing.failures import UserError

T = TypeVar("T")


def lookup(registry: Mapping[str, T], name: str, kind: str) -> T:
    """Returns `registry[name]`, or raises UserError listing the valid names.

    Args:
      registry: name -> entry.
      name: the name given in the config.
      kind: what the registry holds, for the message ("activation", "loss").
    """
    if name in registry:
        return registry[name]
    hint = difflib.get_close_matches(str(name), list(registry), n=1)
    hint = f" Did you mean {hint[0]!r}?" if hint else ""
    raise UserError(f"unknown {kind} {name!r}.{hint} Valid {kind} names: {', '.join(registry)}.")


def name_list(value) -> list[str]:
    """The names in a config field that holds one or several.

    `'relu'` -> ['relu']; a tuple `('x1', 'sin(x1)')` -> each; and the text
    the command line gives for unquoted names, `'(x1^2, x2^2)'` (alone or as
    a tuple's only element) -> ['x1^2', 'x2^2'].
    """
    items = [value] if isinstance(value, str) else list(value)
    names = []
    for item in items:
        text = str(item).strip()
        if text.startswith("(") and text.endswith(")"):
            names += [n.strip().strip("'\"") for n in text[1:-1].split(",") if n.strip()]
        else:
            names.append(text)
    return names

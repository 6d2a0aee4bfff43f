"""The GRAPHS dashboard for JAX: a TensorBoard GraphDef built from a jaxpr.

TensorBoard draws TensorFlow graphs; JAX has jaxprs. This module turns the
jaxpr of a function (the train step) into a `GraphDef` from
`tensorboard.compat.proto`, no TensorFlow needed:

- every primitive (dot_general, add, tanh, ...) becomes a node, named by
  its `jax.named_scope` stack, so TensorBoard groups nodes by module
  (`model/layers_0/dot_general_3`) and each group can be expanded;
- the backward pass (what `jax.grad` transposed) goes under `backward/`,
  mirroring the forward scopes;
- nested calls (`jit`, `custom_jvp_call`, `custom_vjp_call`) are inlined,
  their bodies placed under the caller's scope and the call's name;
- the function's inputs become `inputs/...` nodes named by their pytree
  path (`inputs/state/params/layers/0/kernel`), and every node records the
  shapes and dtypes of its outputs, shown on the edges.
"""

import re
from typing import Any

import jax
from jax.extend import core as jax_core
from tensorboard.compat.proto import attr_value_pb2, graph_pb2, node_def_pb2, tensor_shape_pb2

import nets

# Calls whose bodies are drawn inline, with the parameter holding the body.
_INLINED = {
    "pjit": "jaxpr",
    "jit": "jaxpr",
    "custom_jvp_call": "call_jaxpr",
    "custom_vjp_call": "call_jaxpr",
    "closed_call": "call_jaxpr",
    "checkpoint": "jaxpr",
}


def _scope(eqn) -> str:
    """'transpose(jvp(model))/layers_0' -> 'backward/model/layers_0'."""
    stack = str(eqn.source_info.name_stack)
    backward = "transpose(" in stack
    scope = re.sub(r"\w+\(|\)", "", stack).strip("/")
    return "/".join(part for part in ("backward" if backward else "", scope) if part)


def _shape_attr(avals) -> attr_value_pb2.AttrValue:
    shapes = [
        tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in getattr(a, "shape", ())]
        )
        for a in avals
    ]
    return attr_value_pb2.AttrValue(list=attr_value_pb2.AttrValue.ListValue(shape=shapes))


class _Builder:
    def __init__(self):
        self.graph = graph_pb2.GraphDef()
        self.counts: dict[str, int] = {}

    def unique(self, name: str) -> str:
        n = self.counts.get(name, 0)
        self.counts[name] = n + 1
        return f"{name}_{n}" if n else name

    def node(self, name, op, inputs, avals, **attrs) -> str:
        name = self.unique(name)
        node = node_def_pb2.NodeDef(name=name, op=op, input=inputs)
        node.attr["_output_shapes"].CopyFrom(_shape_attr(avals))
        dtypes = " ".join(str(getattr(a, "dtype", "")) for a in avals)
        node.attr["dtype"].CopyFrom(attr_value_pb2.AttrValue(s=dtypes.encode()))
        for key, value in attrs.items():
            node.attr[key].CopyFrom(attr_value_pb2.AttrValue(s=str(value).encode()))
        self.graph.node.append(node)
        return name

    def add_jaxpr(self, jaxpr, inputs: list[str | None], outer_scope: str) -> list[str | None]:
        """Adds `jaxpr`'s equations; `inputs` name the nodes feeding its invars."""
        env: dict[Any, str | None] = dict(zip(jaxpr.invars, inputs, strict=True))

        def read(var):
            return None if isinstance(var, jax_core.Literal) else env.get(var)

        for eqn in jaxpr.eqns:
            scope = "/".join(p for p in (outer_scope, _scope(eqn)) if p)
            args = [read(v) for v in eqn.invars]
            body = eqn.params.get(_INLINED.get(eqn.primitive.name, ""), None)
            if body is not None:
                inner = body.jaxpr if hasattr(body, "jaxpr") else body
                name = eqn.params.get("name", "")  # jit(f) has one; custom_jvp not
                outs = self.add_jaxpr(inner, args, "/".join(p for p in (scope, name) if p))
            else:
                op = eqn.primitive.name
                name = self.node(
                    f"{scope}/{op}".strip("/"),
                    op,
                    [a for a in args if a],
                    [v.aval for v in eqn.outvars],
                )
                outs = [name] * len(eqn.outvars)
            for var, out in zip(eqn.outvars, outs, strict=True):
                env[var] = out
        return [read(v) for v in jaxpr.outvars]


def graph_def(fn, args: dict[str, Any]) -> graph_pb2.GraphDef:
    """The GraphDef of `fn(*args.values())`, traced by jax.make_jaxpr, not run.

    Args:
      fn: the function to draw, e.g. the train step.
      args: its positional arguments by name; the names label the inputs.
    """
    closed = jax.make_jaxpr(fn)(*args.values())
    builder = _Builder()
    inputs = []
    for path, leaf in jax.tree_util.tree_leaves_with_path(args):
        name = nets.param_name(path)  # (any tree's path, parameters' as a model names them)
        inputs.append(builder.node(f"inputs/{name}", "Input", [], [jax.typeof(leaf)]))
    builder.add_jaxpr(closed.jaxpr, inputs, "")
    return builder.graph

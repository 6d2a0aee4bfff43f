"""GRAPHS: the train step's jaxpr as a TensorBoard GraphDef."""

import jax.numpy as jnp
import pytest
from conftest import read_events

import train
from dashboards import graphs


def test_graph_of_a_scoped_function():
    import jax

    def f(w, x):
        with jax.named_scope("model"):
            h = jnp.tanh(x @ w)
        return jnp.sum(jax.nn.relu(h))  # relu: a custom_jvp call, inlined

    graph = graphs.graph_def(jax.grad(f), {"w": jnp.ones((2, 3)), "x": jnp.ones((4, 2))})
    nodes = {n.name: n for n in graph.node}
    assert {"inputs/w", "inputs/x", "model/dot_general", "model/tanh"} <= set(nodes)
    assert any(name.startswith("backward/model/") for name in nodes)
    assert list(nodes["model/dot_general"].input) == ["inputs/x", "inputs/w"]
    shape = nodes["model/dot_general"].attr["_output_shapes"].list.shape[0]
    assert [d.size for d in shape.dim] == [4, 3]
    assert not any("custom_jvp_call" in name for name in nodes)
    for node in graph.node:  # every edge starts at a node of the graph
        assert set(node.input) <= set(nodes), node


@pytest.mark.parametrize("activation", ["relu", "maxout"])
def test_train_step_graph_in_the_event_file(xor_config, tmp_path, activation):
    xor_config.model.activation = activation
    xor_config.num_steps = 10
    train.train_and_evaluate(xor_config, str(tmp_path))
    names = {node.name for node in read_events(tmp_path).Graph().node}
    for expected in ("inputs/state/params/layers/0/kernel", "inputs/batch/0"):
        assert expected in names, expected
    groups = {name.split("/")[0] for name in names}
    assert {"inputs", "model", "loss", "backward", "optimizer", "metrics"} <= groups
    # each layer under its own name, whatever primitives compute it (nets/kernels.py)
    for scope in ("model/layers_0/", "model/activations_0/", "model/layers_1/"):
        assert any(n.startswith(scope) for n in names), scope
    assert any(n.startswith("backward/model/layers_0/") for n in names)

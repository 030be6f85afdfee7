"""`benchmarks.flops.model_flops` against the matrix products of the traced forward graph.

The forward pass of tiny models (reversible off, so every op sits in one graph) is traced at a
fixed shape; every MatMul / BatchMatMul / Einsum node is counted from its static shapes (2 x the
product of all index sizes, the convention of `model_flops`). TensorFlow's graph profiler
(`tf.compat.v1.profiler`, float_operation) has no statistics for Einsum, so it is used to check
the MatMul nodes' counts only.
"""

import math
import re

import numpy as np
import pytest
import tensorflow as tf

from benchmarks import common, flops
from reformer_keras.layers.lsh_attention import auto_num_buckets

TINY = dict(vocab_size=32, d_model=32, num_heads=2, d_ff=64, bucket_size=32, num_hashes=2,
            ff_chunk_size=None)
SEQ_LEN = 128
MATMULS = ("MatMul", "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3")


def _einsum_flops(equation, shapes):
    """2 x prod(all index sizes) of a contracting einsum; prod(...) of a non-contracting one."""
    inputs, output = equation.replace(" ", "").split("->")
    sizes, ellipsis = {}, []
    for spec, shape in zip(inputs.split(","), shapes):
        if "..." in spec:
            head, tail = spec.split("...")
            n_ell = len(shape) - len(head) - len(tail)
            ellipsis.append(shape[len(head):len(head) + n_ell])
            shape = shape[:len(head)] + shape[len(head) + n_ell:]
            spec = head + tail
        for label, size in zip(spec, shape):
            sizes[label] = max(sizes.get(label, 1), size)
    ell = np.broadcast_shapes(*ellipsis) if ellipsis else ()
    total = math.prod(sizes.values()) * math.prod(ell)
    contracted = set(re.sub(r"[,.]", "", inputs)) - set(output)
    return 2 * total if contracted else total


def _node_flops(op):
    shapes = [tuple(t.shape.as_list()) for t in op.inputs]
    out = tuple(op.outputs[0].shape.as_list())
    if op.type == "Einsum":
        return _einsum_flops(op.get_attr("equation").decode(), shapes)
    if op.type == "MatMul":
        k = shapes[0][0] if op.get_attr("transpose_a") else shapes[0][1]
    else:
        k = shapes[0][-2] if op.get_attr("adj_x") else shapes[0][-1]
    return 2 * math.prod(out) * k


def _forward_graph(attention_types, num_layers):
    model = common.build_lm(SEQ_LEN, num_layers, reversible=False, axial=False,
                            **dict(TINY, attention_types=attention_types))
    model(np.zeros((1, SEQ_LEN), "int32"))
    fn = tf.function(lambda ids: model(ids, training=False))
    graph = fn.get_concrete_function(tf.TensorSpec((1, SEQ_LEN), tf.int32)).graph
    return model, graph


def _graph_matmul_flops(graph):
    ops = graph.get_operations()
    calls = [op.type for op in ops if op.type in (
        "PartitionedCall", "StatefulPartitionedCall", "While", "StatelessWhile", "If")]
    assert not calls, f"nested functions would hide ops from the count: {calls}"
    return {op.name: (op.type, _node_flops(op)) for op in ops
            if op.type in MATMULS + ("Einsum",)}


@pytest.mark.parametrize("attention_types,num_layers", [
    (("full",), 2), (("local",), 2), (("lsh",), 2), (("local", "lsh", "full"), 3)])
def test_forward_flops_match_graph(attention_types, num_layers):
    model, graph = _forward_graph(attention_types, num_layers)
    counted = sum(f for _, f in _graph_matmul_flops(graph).values())
    analytic = flops.model_flops(model.get_config(), SEQ_LEN)
    assert analytic["forward"] == counted, (analytic, counted)


def test_matmul_node_counts_agree_with_tf_profiler():
    _, graph = _forward_graph(("full",), 2)
    ours = {name: f for name, (kind, f) in _graph_matmul_flops(graph).items()
            if kind in MATMULS}
    assert ours, "the feed-forward and the LM head should be MatMul nodes"
    opts = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    opts["output"] = "none"
    profile = tf.compat.v1.profiler.profile(graph=graph, options=opts)
    stack, theirs = [profile], {}
    while stack:
        node = stack.pop()
        stack.extend(node.children)
        if node.name in ours:
            theirs[node.name] = node.float_ops
    assert theirs == ours


def test_attention_terms_scale_as_documented():
    base = dict(common.PEER_CONFIG, num_layers=1)
    full = [flops.model_flops(dict(base, attention_types=("full",)), n)["attention"]
            for n in (1024, 2048)]
    lsh = [flops.model_flops(dict(base, attention_types=("lsh",)), n) for n in (1024, 2048)]
    assert full[1] == 4 * full[0]                          # L^2, all scores counted
    assert lsh[1]["attention"] == 2 * lsh[0]["attention"]  # linear in L
    # 2 rounds x 4 heads x L x (2 x 64 keys) x 64 dims x 2 products x 2 FLOPs.
    assert lsh[0]["attention"] == 2 * 4 * 1024 * 128 * 64 * 2 * 2
    reversible = flops.model_flops(dict(base, attention_types=("lsh",)), 1024)
    plain = flops.model_flops(dict(base, attention_types=("lsh",), reversible=False), 1024)
    assert plain["train_hardware"] == plain["train_model"] == 3 * plain["forward"]
    assert reversible["train_hardware"] == 3 * reversible["forward"] + reversible[
        "forward_stack"]
    # Stored top blocks are not recomputed: of 2 equal blocks with 1 stored, half the stack.
    two = dict(base, num_layers=2, attention_types=("lsh",))
    stored = flops.model_flops(dict(two, stored_top_blocks=1), 1024, batch=2)
    assert stored["train_hardware"] == 3 * stored["forward"] + stored["forward_stack"] / 2
    none = flops.model_flops(dict(two, stored_top_blocks=2), 1024)
    assert none["train_hardware"] == none["train_model"]


@pytest.mark.parametrize("length", [64, 128, 1024, 16384, 32768, 65536, 1 << 20])
def test_bucket_rule_mirrors_the_layer(length):
    assert flops.auto_num_buckets(length, 64) == auto_num_buckets(length, 64)

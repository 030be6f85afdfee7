"""LSH attention against references: a NumPy brute force of the whole sort/chunk/combine
pipeline, the exact limits (one bucket = local, one chunk = full), and the approximation of full
attention as hash rounds grow."""

import math

import numpy as np
import pytest
import tensorflow as tf

from reformer_keras.layers import FullSelfAttention, LocalSelfAttention, LSHSelfAttention
from reformer_keras.layers.lsh_utils import gather_rows, permute_rows, signed_argmax

RNG = np.random.default_rng(0)


def _x(b, l, d, seed=0):
    return np.random.default_rng(seed).normal(size=(b, l, d)).astype("float32")


def _copy_weights(src, dst, x):
    dst(x)  # build
    dst.set_weights([w.numpy() for w in src.weights])


def numpy_lsh_reference(layer, x, num_hashes, valid=None):
    """Brute-force LSH attention: for every query, the multiset (or, without duplicates, the
    set) union over hash rounds of the keys in its chunk window, attended with one softmax."""
    b, l, _ = x.shape
    c = layer.bucket_size
    lp = math.ceil(l / c) * c
    w_qk, w_v, w_o = (w.numpy() for w in (layer.qk_kernel, layer.v_kernel, layer.output_kernel))
    qk = np.einsum("bld,dhk->bhlk", x, w_qk)
    v = np.einsum("bld,dhk->bhlk", x, w_v)
    valid = np.ones((b, l), bool) if valid is None else valid.astype(bool)
    pad = [(0, 0), (0, 0), (0, lp - l), (0, 0)]
    qk_p = np.pad(qk, pad)
    valid_p = np.pad(valid, [(0, 0), (0, lp - l)])
    factors = layer._bucket_factors(lp)
    buckets = np.asarray(layer.hash_buckets(qk_p, num_hashes, factors))
    buckets = np.where(valid_p[:, None, None, :], buckets, math.prod(factors))
    dh = qk.shape[-1]
    out = np.zeros_like(v)
    for bi in range(b):
        for h in range(qk.shape[1]):
            counts = np.zeros((lp, lp))
            for r in range(num_hashes):
                order = np.lexsort((np.arange(lp), buckets[bi, h, r]))
                chunk = np.empty(lp, int)
                chunk[order] = np.arange(lp) // c
                diff = chunk[None, :] - chunk[:, None]  # key chunk - query chunk
                counts += (diff >= -layer.num_chunks_before) & (diff <= layer.num_chunks_after)
            mult = counts if layer.allow_duplicate_attention else (counts > 0)
            q = qk_p[bi, h].astype("float64")
            k = q / np.sqrt((q**2).mean(-1, keepdims=True) + 1e-6)  # norm sqrt(dh), as trax
            logits = q @ k.T / np.sqrt(dh)                          # = q . k / |k|
            visible = valid_p[bi][None, :].repeat(lp, 0)
            if layer.causal:
                visible &= np.tril(np.ones((lp, lp), bool))
            logits = np.where(visible, logits, -1e9)
            logits[np.eye(lp, dtype=bool) & visible] = -1e5
            top = np.where(mult > 0, logits, -np.inf).max(-1, keepdims=True)
            weights = mult * np.exp(np.minimum(logits - top, 0.0))
            weights /= weights.sum(-1, keepdims=True)
            out[bi, h] = (weights @ np.pad(v[bi, h], [(0, lp - l), (0, 0)]))[:l]
    return np.einsum("bhlk,hkd->bld", out, w_o), valid


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("dedup", [False, True])
@pytest.mark.parametrize("num_buckets", [4, [2, 4]])
def test_lsh_matches_numpy_brute_force(causal, dedup, num_buckets):
    x = _x(2, 50, 16, seed=1)
    layer = LSHSelfAttention(2, 8, bucket_size=8, num_hashes=3, num_buckets=num_buckets,
                             causal=causal, allow_duplicate_attention=not dedup, seed=3)
    got = np.asarray(layer(x))
    want, _ = numpy_lsh_reference(layer, x, 3)
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-4)


def test_lsh_brute_force_with_window_after_padding_and_more_rounds_at_eval():
    x = _x(2, 45, 16, seed=2)
    mask = np.ones((2, 45), bool)
    mask[1, 30:] = False
    layer = LSHSelfAttention(2, 8, bucket_size=8, num_hashes=2, num_buckets=8,
                             num_chunks_before=1, num_chunks_after=1, seed=4)
    for n in (2, 6):  # 6: more rounds at evaluation than in training
        got = np.asarray(layer(x, padding_mask=mask, num_hashes=n))
        want, valid = numpy_lsh_reference(layer, x, n, valid=mask)
        np.testing.assert_allclose(got[valid], want[valid], atol=1e-5, rtol=1e-4)


def test_one_bucket_equals_causal_shared_qk_local_attention():
    x = _x(2, 70, 16, seed=3)
    lsh = LSHSelfAttention(4, 8, bucket_size=16, num_hashes=2, num_buckets=1, causal=True)
    local = LocalSelfAttention(4, 8, chunk_size=16, causal=True, shared_qk=True)
    lsh(x)
    _copy_weights(lsh, local, x)
    np.testing.assert_allclose(np.asarray(lsh(x)), np.asarray(local(x)), atol=1e-5)


@pytest.mark.parametrize("causal", [False, True])
def test_one_chunk_equals_full_shared_qk_attention(causal):
    x = _x(2, 40, 16, seed=4)
    lsh = LSHSelfAttention(4, 8, bucket_size=64, num_hashes=4, num_buckets=8, causal=causal)
    full = FullSelfAttention(4, 8, causal=causal, shared_qk=True)
    lsh(x)
    _copy_weights(lsh, full, x)
    np.testing.assert_allclose(np.asarray(lsh(x)), np.asarray(full(x)), atol=1e-5)


@pytest.mark.parametrize("make", [
    lambda: FullSelfAttention(2, 8, causal=True),
    lambda: FullSelfAttention(2, 8, causal=True, shared_qk=True),
    lambda: LocalSelfAttention(2, 8, chunk_size=8, causal=True),
    lambda: LSHSelfAttention(2, 8, bucket_size=8, num_buckets=1, causal=True),
])
def test_causality(make):
    layer = make()
    x = _x(1, 40, 16, seed=5)
    base = np.asarray(layer(x))
    for t in (0, 7, 8, 23, 38):
        changed = x.copy()
        changed[:, t + 1:] = _x(1, 40 - t - 1, 16, seed=100 + t)
        out = np.asarray(layer(changed))
        np.testing.assert_allclose(out[:, :t + 1], base[:, :t + 1], atol=1e-6)
        if t < 38:
            assert np.abs(out[:, t + 1:] - base[:, t + 1:]).max() > 1e-4  # it does look ahead


def _clustered(length, d, clusters, seed):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, d)) * 3
    labels = rng.integers(0, clusters, size=length)
    return (centres[labels] + 0.3 * rng.normal(size=(length, d))).astype("float32")[None]


@pytest.mark.parametrize("scale", [0.25, 1.0])
def test_lsh_approaches_full_attention_as_hash_rounds_grow(scale):
    """Error against full shared-QK attention falls with every extra hash round, for soft
    attention (scale 0.25: many keys matter) and sharp attention (scale 1: a query's nearest
    keys dominate, and one round already finds most of them)."""
    x = _clustered(256, 32, clusters=12, seed=6) * scale
    full = FullSelfAttention(4, 16, shared_qk=True, seed=1)
    want = np.asarray(full(x))
    errors = []
    for n in (1, 2, 4, 8):
        errs = []
        for trial in range(4):
            lsh = LSHSelfAttention(4, 16, bucket_size=16, num_hashes=n, num_buckets=16,
                                   hash_seed=1000 * trial + 7)
            lsh(x)
            lsh.set_weights(full.get_weights() + [w.numpy() for w in lsh.weights[4:]])
            errs.append(np.abs(np.asarray(lsh(x)) - want).mean())
        errors.append(np.mean(errs))
    assert all(a > b for a, b in zip(errors, errors[1:])), errors
    assert errors[-1] < (0.8 if scale < 1 else 0.9) * errors[0], errors


def test_training_draws_fresh_rotations_inference_is_deterministic():
    x = _x(1, 64, 16, seed=7)
    layer = LSHSelfAttention(2, 8, bucket_size=8, num_hashes=1, num_buckets=8, seed=5)
    np.testing.assert_array_equal(np.asarray(layer(x)), np.asarray(layer(x)))
    a, b = np.asarray(layer(x, training=True)), np.asarray(layer(x, training=True))
    assert np.abs(a - b).max() > 1e-5


@pytest.mark.parametrize("attn_chunks,per_example", [(4, False), (4, True), (8, True)])
def test_attn_chunks_memory_knob_gives_the_same_result(attn_chunks, per_example):
    x = _x(2, 50, 16, seed=8)
    whole = LSHSelfAttention(4, 8, bucket_size=8, num_hashes=2, num_buckets=4, causal=True,
                             seed=9, rotations_per_example=per_example)
    chunked = LSHSelfAttention(4, 8, bucket_size=8, num_hashes=2, num_buckets=4, causal=True,
                               seed=9, attn_chunks=attn_chunks,
                               rotations_per_example=per_example)
    whole(x)
    _copy_weights(whole, chunked, x)
    np.testing.assert_allclose(np.asarray(chunked(x)), np.asarray(whole(x)), atol=1e-6)
    rng = np.array([5, 6], "int32")
    np.testing.assert_allclose(np.asarray(chunked(x, training=True, rng=rng)),
                               np.asarray(whole(x, training=True, rng=rng)), atol=1e-6)


def test_training_gradients_match_finite_differences():
    """The whole training-mode layer (hashing with the call's rotations, sort, chunked fused
    attention with its written-out backward, unsort, combination of rounds) differentiated by
    TensorFlow equals central differences, for the input and every kernel. Buckets are piecewise
    constant, so small perturbations leave them unchanged."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    layer = LSHSelfAttention(num_heads=2, head_dim=8, bucket_size=4, num_hashes=2, causal=True,
                             seed=1)
    rs = np.random.default_rng(0)
    x0 = rs.normal(size=(1, 16, 16)).astype("float32")
    weights = tf.constant(rs.normal(size=(1, 16, 16)).astype("float32"))
    rng = tf.constant([5, 7], tf.int32)
    layer.build(x0.shape)

    def loss(x):
        return tf.reduce_sum(layer(x, training=True, rng=rng) * weights)

    x = tf.constant(x0)
    with tf.GradientTape() as tape:
        tape.watch(x)
        value = loss(x)
    grads = tape.gradient(value, [x] + layer.trainable_variables)
    def numeric(target, i, eps):
        base = x0 if target is None else target.numpy()
        values = []
        for sign in (1, -1):
            moved = base.copy()
            moved[i] += sign * eps
            if target is None:
                values.append(float(loss(tf.constant(moved))))
            else:
                target.assign(moved)
                values.append(float(loss(x)))
                target.assign(base)
        return (values[0] - values[1]) / (2 * eps)

    for target, grad in zip([None] + layer.trainable_variables, grads):
        shape, checked = (x0.shape if target is None else target.shape), 0
        for _ in range(16):
            i = tuple(rs.integers(0, s) for s in shape)
            coarse, fine = numeric(target, i, 2e-3), numeric(target, i, 1e-3)
            if abs(coarse - fine) > 1e-2 + 0.05 * abs(fine):
                continue  # a token changed bucket inside the step: not differentiable here
            assert abs(float(np.asarray(grad)[i]) - fine) < 2e-3 + 1e-2 * abs(fine), (
                getattr(target, "name", "x"), i, float(np.asarray(grad)[i]), fine)
            checked += 1
        assert checked >= 8, (getattr(target, "name", "x"), checked)


@pytest.mark.parametrize("attn_chunks,per_example", [(1, False), (8, False), (8, True)])
def test_given_buckets_reproduce_the_call(attn_chunks, per_example):
    """`compute_buckets` gives the buckets `call` hashes into (training and inference, all heads
    at once or in groups), and `call(..., buckets=...)` attends with them."""
    layer = LSHSelfAttention(4, 8, bucket_size=8, num_hashes=2, causal=True,
                             attn_chunks=attn_chunks, seed=4, rotations_per_example=per_example)
    x = _x(2, 45, 16, seed=6)
    rng = np.array([3, 9], "int32")
    for kwargs in (dict(training=True, rng=rng), dict(training=False), dict(num_hashes=3)):
        buckets = np.asarray(layer.compute_buckets(x, **kwargs))
        assert buckets.shape == (2, 4, kwargs.get("num_hashes", 2), 48)
        assert buckets.min() >= 0 and buckets.max() < 8
        np.testing.assert_allclose(layer(x, buckets=buckets, **kwargs), layer(x, **kwargs),
                                   atol=1e-6)
    other = np.asarray(layer.compute_buckets(x, training=True, rng=np.array([5, 1], "int32")))
    assert np.mean(other != layer.compute_buckets(x, training=True, rng=rng)) > 0.3
    moved = np.asarray(layer(x, buckets=other, training=True, rng=rng))
    assert np.abs(moved - np.asarray(layer(x, training=True, rng=rng))).max() > 1e-2
    with pytest.raises(ValueError, match="`buckets` must have shape"):
        layer(x, buckets=other[:, :, :1])
    # return_buckets: the same output, and the buckets compute_buckets gives.
    for kwargs in (dict(training=True, rng=rng), dict(training=False)):
        out, returned = layer(x, return_buckets=True, **kwargs)
        np.testing.assert_array_equal(out, layer(x, **kwargs))
        np.testing.assert_array_equal(returned, layer.compute_buckets(x, **kwargs))
        given = layer(x, buckets=other, return_buckets=True, **kwargs)[1]
        np.testing.assert_array_equal(given, other)


@pytest.mark.parametrize("attn_chunks,projections", [(1, 2), (4, 4 + 2)])
def test_returning_buckets_projects_once(attn_chunks, projections):
    """With all heads in one group, a call returning its buckets hashes its own q/k projection:
    two (B, L, D) x (D, H, dh) products (q/k and v), not a third one for the hash. With four
    head groups, the buckets are hashed before the groups' loop, one head block at a time (4
    products), and the loop's body projects q/k and v of its group (2)."""
    layer = LSHSelfAttention(4, 8, bucket_size=8, num_hashes=2, causal=True,
                             attn_chunks=attn_chunks, seed=4)
    x = _x(2, 32, 16, seed=6)
    layer.build(x.shape)
    graph = tf.function(lambda a: layer(a, training=True, rng=tf.constant([3, 9]),
                                        return_buckets=True)).get_concrete_function(x).graph
    nodes = list(graph.as_graph_def().node) + [n for f in graph.as_graph_def().library.function
                                               for n in f.node_def]
    # Keras hands TensorFlow the equation with canonical letters.
    found = [n for n in nodes if n.op == "Einsum"
             and n.attr["equation"].s.decode() in ("bld,dhk->bhlk", "abc,cde->adbe")]
    assert len(found) == projections


@pytest.mark.parametrize("rounds,graph", [(1, False), (2, True), (3, False)])
def test_permute_rows_gradient_is_the_gather_gradient(rounds, graph):
    """`permute_rows` (gradient by gathering with the inverse permutations) against automatic
    differentiation of the plain gather (a scatter-add)."""
    rng = np.random.default_rng(rounds)
    b, h, n, d = 2, 3, 10, 4
    x = tf.constant(rng.normal(size=(b, h, n, d)), tf.float32)
    perm = np.stack([[[rng.permutation(n) for _ in range(rounds)] for _ in range(h)]
                     for _ in range(b)])                                  # (b, h, rounds, n)
    undo = np.argsort(perm, axis=-1) + (np.arange(rounds) * n)[:, None]
    index = tf.constant(perm.reshape(b, h, -1), tf.int32)
    inverse = tf.constant(undo.reshape(b, h, -1), tf.int32)
    w = tf.constant(rng.normal(size=(b, h, rounds * n, d)), tf.float32)

    def grads(fn):
        def run(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = fn(x)
                loss = tf.reduce_sum(y * w)
            return y, tape.gradient(loss, x)
        return (tf.function(run) if graph else run)(x)

    got = grads(lambda x: permute_rows(x, index, inverse, rounds))
    want = grads(lambda x: gather_rows(x, index))
    for g, r in zip(got, want):
        np.testing.assert_allclose(g, r, rtol=1e-6, atol=1e-6)
    assert np.abs(np.asarray(want[1])).max() > 0.1


@pytest.mark.parametrize("num_buckets", [8, [4, 6]])
def test_hash_buckets_are_the_argmax_over_rotations_and_their_negations(num_buckets):
    """The paper's angular LSH, h(x) = argmax([xR; -xR]), per factor, against NumPy; ties
    (here: rows of zeros and a repeated extreme) take the first index, as argmax does."""
    layer = LSHSelfAttention(2, 8, bucket_size=4, num_hashes=3, num_buckets=num_buckets, seed=3)
    qk = np.random.default_rng(2).normal(size=(2, 2, 16, 8)).astype("float32")
    qk[0, 0, 0] = 0.0
    factors = layer._bucket_factors(16)
    got = np.asarray(layer.hash_buckets(tf.constant(qk), 3, factors))
    want, stride = np.zeros((2, 2, 3, 16), np.int64), 1
    for i, num in enumerate(factors):
        rot = np.asarray(layer.rotations(i, 3, num, None))             # (H, dh, n, num / 2)
        rotated = np.einsum("bhld,hdnm->bhnlm", qk, rot)
        want += np.argmax(np.concatenate([rotated, -rotated], -1), -1) * stride
        stride *= num
    np.testing.assert_array_equal(got, want)
    tie = tf.constant([[1.0, -3.0, 3.0, 0.5], [-2.0, 1.0, -2.0, 2.0], [0.0] * 4])
    np.testing.assert_array_equal(
        signed_argmax(tie, 4),
        np.argmax(np.concatenate([tie.numpy(), -tie.numpy()], -1), -1))


@pytest.mark.parametrize("graph", [False, True])
def test_rotations_per_example_hash_each_example_its_own_way(graph):
    """With `rotations_per_example`, training hashes example b with its own rotations (NumPy
    argmax over [x R_b; -x R_b]), so identical examples land in different buckets; without it, or
    at inference, every example shares one set."""
    qk = np.random.default_rng(4).normal(size=(1, 2, 32, 8)).astype("float32")
    qk = tf.constant(np.concatenate([qk, qk, qk], 0))                # 3 identical examples
    seed = tf.constant([8, 1], tf.int32)
    shared = LSHSelfAttention(2, 8, bucket_size=4, num_hashes=2, num_buckets=8, seed=3)
    own = LSHSelfAttention(2, 8, bucket_size=4, num_hashes=2, num_buckets=8, seed=3,
                           rotations_per_example=True)

    def hashed(layer, s):
        fn = lambda q: layer.hash_buckets(q, 2, (8,), s)  # noqa: E731
        return np.asarray(tf.function(fn)(qk) if graph else fn(qk))

    got = hashed(own, seed)                                              # (3, 2, 2, 32)
    rot = np.asarray(own.rotations(0, 2, 8, seed, 3))                    # (3, H, dh, n, 4)
    rotated = np.einsum("bhld,bhdnm->bhnlm", qk.numpy(), rot)
    np.testing.assert_array_equal(
        got, np.argmax(np.concatenate([rotated, -rotated], -1), -1))
    assert np.mean(got[0] != got[1]) > 0.3 and np.mean(got[1] != got[2]) > 0.3
    common = hashed(shared, seed)
    np.testing.assert_array_equal(common[0], common[1])
    np.testing.assert_array_equal(hashed(own, None), hashed(shared, None))
    assert own.get_config()["rotations_per_example"] is True
    assert LSHSelfAttention.from_config(own.get_config()).rotations_per_example


@pytest.mark.parametrize("half", [100, 200, 40000])
def test_signed_argmax_for_index_types_int8_int16_int32(half):
    rotated = np.random.default_rng(half).normal(size=(3, half)).astype("float32")
    rotated[1, half - 1] = -9.0  # the winner in the last slot of the negated half
    want = np.argmax(np.concatenate([rotated, -rotated], -1), -1)
    for got in (signed_argmax(tf.constant(rotated), half),
                tf.function(signed_argmax)(tf.constant(rotated), half)):
        assert got.dtype == tf.int32 and want[1] == 2 * half - 1
        np.testing.assert_array_equal(got, want)

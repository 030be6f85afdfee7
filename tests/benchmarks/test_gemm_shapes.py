"""`benchmarks.gemm_shapes`: every form is timed, and its products are the forms' shapes."""

import numpy as np
import tensorflow as tf

from benchmarks import gemm_shapes


def test_forms_compute_the_products_they_name():
    """op(A) @ op(B) as the transpose flags say gives (M, N) for each form's (M, K, N)."""
    for m, k, n, ta, tb in gemm_shapes.FORMS.values():
        a = tf.ones((k, m) if ta else (m, k))
        b = tf.ones((n, k) if tb else (k, n))
        c = tf.linalg.matmul(a, b, transpose_a=ta, transpose_b=tb)
        assert c.shape == (m, n)
        np.testing.assert_allclose(c[0, 0], k)


def test_rates_for_small_forms():
    forms = {"plain": (128, 128, 128, False, False), "weight_grad": (128, 256, 128, True, False)}
    rates = gemm_shapes.tf_rates(repeats=1, forms=forms)
    assert set(rates) == set(forms)
    assert all(r > 0 for r in rates.values())


def test_weight_gradient_rates_time_the_transpose_a_forms():
    forms = {"weight_grad": (64, 256, 32, True, False)}
    rates = gemm_shapes.weight_gradient_rates(repeats=1, forms=forms)
    assert list(rates) == ["weight_grad as conv filter grad"]
    assert rates["weight_grad as conv filter grad"] > 0

"""`FullSelfAttention`: the O(L^2) baseline, with the Reformer's masks (causal, shared QK)."""

import keras

from reformer_keras.layers import attention_utils as au
from reformer_keras.layers.self_attention_base import SelfAttentionBase


@keras.saving.register_keras_serializable(package="reformer_keras")
class FullSelfAttention(SelfAttentionBase):
    """Every query attends to every (visible) key; memory and time O(L^2).

    The exact reference that LSH and local attention are tested against: with `shared_qk=True` it
    is the full shared-QK attention of the Reformer paper (unit-norm keys, self only when nothing
    else is visible). Same constructor and call signature as `SelfAttentionBase`.
    """

    def _attend(self, q, k, v, positions, valid, training, seed):
        if self.shared_qk:
            k = au.unit_keys(k)
        pos = positions[:, None, :]
        out, _ = au.fused_attention(  # scores (B, H, L, L), recomputed in the backward
            q, k, v, pos, pos, valid[:, None, :], self.causal, self.shared_qk,
            dropout_rate=self._attention_dropout_rate(training), seed=seed, salt=11)
        return out

    def _cache_steps(self, hash_length=None, cache=None):
        from reformer_keras.layers import tf_cached_attention  # pylint: disable=import-outside-toplevel
        return tf_cached_attention.FullCache(self)

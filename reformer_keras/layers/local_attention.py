"""`LocalSelfAttention`: attention within fixed-size chunks and their neighbours, O(L * C)."""

import keras
from keras import ops

from reformer_keras.layers import attention_utils as au
from reformer_keras import input_checks
from reformer_keras.layers.self_attention_base import SelfAttentionBase


@keras.saving.register_keras_serializable(package="reformer_keras")
class LocalSelfAttention(SelfAttentionBase):
    """Chunked local attention: the sequence is cut into chunks of `chunk_size`; each query sees
    the keys of its own chunk plus `num_chunks_before` / `num_chunks_after` neighbours.

    Any length works: the sequence is padded to a multiple of `chunk_size` internally (padding is
    masked) and the output cropped back. Other args as in `SelfAttentionBase`
    (`shared_qk=False` by default here).
    """

    def __init__(self, num_heads, head_dim, chunk_size=64, num_chunks_before=1,
                 num_chunks_after=0, **kwargs):
        super().__init__(num_heads, head_dim, **kwargs)
        self.chunk_size = input_checks.integer("chunk_size", chunk_size)
        self.num_chunks_before = input_checks.integer("num_chunks_before", num_chunks_before, 0)
        self.num_chunks_after = input_checks.integer("num_chunks_after", num_chunks_after, 0)

    def _attend(self, q, k, v, positions, valid, training, seed):
        length = ops.shape(q)[2]
        c = self.chunk_size
        # (B, H, L, dh) -> (B, H, nc, C, dh); positions / valid (B, L) -> (B, 1, nc, C).
        q, _ = au.pad_length_to_multiple(q, c, axis=2)
        k, _ = au.pad_length_to_multiple(k, c, axis=2)
        v, _ = au.pad_length_to_multiple(v, c, axis=2)
        positions, _ = au.pad_length_to_multiple(positions, c, axis=1)
        valid, _ = au.pad_length_to_multiple(valid, c, axis=1, value=False)
        if self.shared_qk:
            k = au.unit_keys(k)
        q, k, v = (au.split_chunks(t, c, axis=2) for t in (q, k, v))
        q_pos = au.split_chunks(positions[:, None, :], c, axis=2)
        valid = au.split_chunks(valid[:, None, :], c, axis=2)

        window = dict(before=self.num_chunks_before, after=self.num_chunks_after, axis=2)
        k_win = au.look_adjacent(k, **window)
        v_win = au.look_adjacent(v, **window)
        k_pos = au.look_adjacent(q_pos, **window)
        k_valid = au.look_adjacent(valid, **window, fill=False)

        out, _ = au.fused_attention(  # scores (B, H, nc, C, W*C), recomputed in the backward
            q, k_win, v_win, q_pos, k_pos, k_valid, self.causal, self.shared_qk,
            dropout_rate=self._attention_dropout_rate(training), seed=seed, salt=12)
        return au.trim_length(au.merge_chunks(out, axis=2), length, axis=2)

    def _cache_steps(self, hash_length=None, cache=None):
        from reformer_keras.layers import tf_cached_attention  # pylint: disable=import-outside-toplevel
        return tf_cached_attention.LocalCache(self)

    def get_config(self):
        config = super().get_config()
        config.update(chunk_size=self.chunk_size, num_chunks_before=self.num_chunks_before,
                      num_chunks_after=self.num_chunks_after)
        return config

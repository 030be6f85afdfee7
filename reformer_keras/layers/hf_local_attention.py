"""`HFLocalSelfAttention`: Hugging Face's (Trax's) Reformer local attention, exactly."""

import math

import keras
from keras import ops

from reformer_keras.layers import hf_attention_utils as hu
from reformer_keras import input_checks
from reformer_keras.layers.self_attention_base import SelfAttentionBase


def check_chunk_options(chunk_length, num_chunks_before, num_chunks_after, pad_multiple,
                        pad_min_length):
    """Validates the chunking options shared by the Hugging Face attention layers."""
    chunk_length = input_checks.integer("chunk_length", chunk_length)
    pad_multiple = input_checks.integer("pad_multiple", pad_multiple or chunk_length)
    if pad_multiple % chunk_length:
        raise ValueError(f"`pad_multiple` ({pad_multiple}) must be a multiple of `chunk_length` "
                         f"({chunk_length}).")
    pad_min_length = input_checks.integer("pad_min_length",
                                        chunk_length if pad_min_length is None else pad_min_length)
    return (chunk_length, input_checks.integer("num_chunks_before", num_chunks_before, 0),
            input_checks.integer("num_chunks_after", num_chunks_after, 0), pad_multiple,
            pad_min_length)


@keras.saving.register_keras_serializable(package="reformer_keras")
class HFLocalSelfAttention(SelfAttentionBase):
    """Local attention as Hugging Face's `LocalSelfAttention` computes it.

    Separate query, key and value projections (`shared_qk=False`); keys scaled by dh ** -0.5;
    the (padded) sequence is cut into chunks of `chunk_length`, chunk i attends to chunks
    i - num_chunks_before .. i + num_chunks_after cyclically; a padded length of at most
    `chunk_length` attends over the whole sequence; masked logits -1e9 (causal, padding);
    no self mask.

    Args:
      chunk_length, num_chunks_before, num_chunks_after: the window.
      pad_multiple, pad_min_length: the model's input padding (`hf_attention_utils.padded_length`:
        the least common multiple of the model's chunk lengths and the smallest of them); a
        converted model passes the same values to every layer. Default: `chunk_length`.
      Other args as in `SelfAttentionBase` (shared_qk must stay False).

    Call: x (B, L, d_model) -> (B, L, d_model).
    """

    def __init__(self, num_heads, head_dim, chunk_length=64, num_chunks_before=1,
                 num_chunks_after=0, pad_multiple=None, pad_min_length=None, **kwargs):
        if kwargs.get("shared_qk"):
            raise ValueError("HFLocalSelfAttention has separate query and key projections "
                             "(`shared_qk` must be False).")
        super().__init__(num_heads, head_dim, **kwargs)
        (self.chunk_length, self.num_chunks_before, self.num_chunks_after, self.pad_multiple,
         self.pad_min_length) = check_chunk_options(chunk_length, num_chunks_before,
                                                    num_chunks_after, pad_multiple,
                                                    pad_min_length)

    def _attend(self, q, k, v, positions, valid, training, seed):
        length = ops.shape(q)[2]
        static = q.shape[2]
        padded = hu.padded_length(static if isinstance(static, int) else length,
                                  self.pad_multiple, self.pad_min_length)
        q, k, v = (hu.pad_axis(t, padded, axis=2) for t in (q, k, v))
        k = k / ops.cast(math.sqrt(self.head_dim), k.dtype)
        index = ops.arange(padded, dtype="int32")
        valid = hu.pad_axis(valid, padded, axis=1, value=False)[:, None, :]  # (B, 1, Lp)
        index = ops.broadcast_to(index[None, None, :], ops.shape(valid))

        def window(chunk, before, after):
            qc, kc, vc = (hu.split_chunks(t, chunk) for t in (q, k, v))
            q_idx = hu.split_chunks(index, chunk)
            k_idx = hu.look_adjacent(q_idx, before, after)
            k_valid = hu.look_adjacent(hu.split_chunks(valid, chunk), before, after)
            allowed = k_valid[..., None, :]
            if self.causal:
                allowed = ops.logical_and(allowed, q_idx[..., :, None] >= k_idx[..., None, :])
            out, _ = hu.masked_softmax_attend(
                qc, hu.look_adjacent(kc, before, after), hu.look_adjacent(vc, before, after),
                allowed)
            return hu.merge_chunks(out)

        standard = padded <= self.chunk_length
        if not isinstance(standard, bool):
            standard = ops.convert_to_tensor(standard)
        out = hu.static_or_cond(
            standard, lambda: window(padded, 0, 0),
            lambda: window(self.chunk_length, self.num_chunks_before, self.num_chunks_after))
        return out[:, :, :length]

    def get_config(self):
        config = super().get_config()
        config.update(chunk_length=self.chunk_length, num_chunks_before=self.num_chunks_before,
                      num_chunks_after=self.num_chunks_after, pad_multiple=self.pad_multiple,
                      pad_min_length=self.pad_min_length)
        return config

"""Fast cached autoregressive generation for the causal `ReformerLM` (TensorFlow backend).

  generate(model, prompt_ids, max_new_tokens, temperature=1.0, top_k=None, top_p=None,
           seed=None, eos_id=None, pad_id=0, max_length=None) -> (B, P + N) int32
  init_cache(model, batch, max_length) -> cache          (list of per-layer dicts of tensors)
  prefill(model, cache, prompt_ids) -> (cache, logits (B, V))
  decode_step(model, cache, token (B,), position) -> (logits (B, V), cache)
  filter_logits / sample_logits                           top-k, top-p, temperature sampling

Encoder-decoder (`ReformerSeq2Seq`, see `seq2seq_decoding.py`):
  generate_seq2seq(model, encoder_token_ids, max_new_tokens, encoder_padding_mask=None,
                   start_id=0, temperature=1.0, top_k=None, top_p=None, seed=None, eos_id=None,
                   pad_id=0) -> (B, 1 + N) int32
  init_seq2seq_cache(model, encoder_output, max_length, encoder_padding_mask=None) -> cache
  seq2seq_decode_step(model, cache, token (B,), position) -> (logits (B, V), cache)

See `decoding.py` for exactness (full / local exact; LSH emulates the last-token sort).
"""

from reformer_keras.generation.decoding import decode_step, generate, init_cache, prefill
from reformer_keras.generation.sampling import filter_logits, sample_logits
from reformer_keras.generation.seq2seq_decoding import (generate_seq2seq, init_seq2seq_cache,
                                                        seq2seq_decode_step)

__all__ = ["decode_step", "filter_logits", "generate", "generate_seq2seq", "init_cache",
           "init_seq2seq_cache", "prefill", "sample_logits", "seq2seq_decode_step"]

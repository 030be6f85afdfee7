"""`ReformerLM`: a causal language model on the Reformer backbone."""

import keras

from reformer_keras.layers.seeding import glorot_uniform
from reformer_keras.models.causal_lm_task import CausalLMTask
from reformer_keras.models.reformer_backbone import ReformerBackbone, stack_config


@keras.saving.register_keras_serializable(package="reformer_keras")
class ReformerLM(CausalLMTask):
    """Causal Reformer language model: token ids (B, L) int -> logits (B, L, vocab) float32.

    Args: as `ReformerBackbone` (a `ReformerConfig` with causal=True, or its fields), e.g.
      `ReformerLM(vocab_size=258, d_model=128, num_layers=2, num_heads=4, d_ff=256,
                  attention_types=("lsh",), bucket_size=32, num_hashes=2, max_len=1024)`.

    Call: `model(token_ids)` or `model({"token_ids": ..., "padding_mask": ...})`, plus
    `training`, and `num_hashes` to change the LSH hash rounds (e.g. more at evaluation).
    """

    def __init__(self, *args, config=None, **kwargs):
        config = stack_config(config, args, kwargs, type(self).__name__, max_positional=5,
                              causal=True)
        super().__init__(**kwargs)
        self.backbone = ReformerBackbone(config=config, name="backbone")
        self.lm_head = keras.layers.Dense(
            config.vocab_size, name="lm_head", dtype=None,
            kernel_initializer=glorot_uniform(self.backbone.seed, "lm_head"))

    def generate(self, prompt_ids, max_new_tokens, **kwargs):
        """Cached autoregressive sampling: (B, P) int ids -> (B, P + max_new_tokens) int32.

        Keyword args (temperature, top_k, top_p, seed, eos_id, pad_id, max_length) as in
        `reformer_keras.generation.generate`, which this delegates to (TensorFlow backend).
        """
        from reformer_keras.generation import generate  # pylint: disable=import-outside-toplevel
        return generate(self, prompt_ids, max_new_tokens, **kwargs)

    def get_config(self):
        config = self.backbone.config.to_dict()
        config.pop("causal")
        return {"name": self.name, "trainable": self.trainable, **config}

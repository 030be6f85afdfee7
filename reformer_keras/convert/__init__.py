"""Converting Hugging Face Reformer checkpoints into `ReformerLM` models.

  from_hf(directory)        -> (ReformerLM with the checkpoint's weights, tokenizer or None)
  hf_config.lm_arguments    config.json -> ReformerLM arguments (`HFConfigError`)
  hf_weights.read_checkpoint / assign   weights (`HFWeightsError`)

`ReformerLM.from_preset("hf:DIR")` is `from_hf(DIR)[0]`. See docs/pretrained.md.
"""

from reformer_keras.convert.hf_config import HFConfigError
from reformer_keras.convert.hf_model import from_hf, hf_tokenizer
from reformer_keras.convert.hf_weights import HFWeightsError

__all__ = ["HFConfigError", "HFWeightsError", "from_hf", "hf_tokenizer"]

"""Reading Hugging Face Reformer checkpoints (pure Python + NumPy).

  hf_config.lm_arguments    config.json -> ReformerLM arguments (`HFConfigError`)
  hf_weights.read_checkpoint / assign   weights (`HFWeightsError`)

`reformer_keras.models.from_hf(DIR)` builds the model from them, and
`ReformerLM.from_preset("hf:DIR")` is `from_hf(DIR)[0]`. See docs/pretrained.md.
"""

from reformer_keras.convert.hf_config import HFConfigError
from reformer_keras.convert.hf_weights import HFWeightsError

__all__ = ["HFConfigError", "HFWeightsError"]

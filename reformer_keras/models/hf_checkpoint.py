"""`from_hf`: a Hugging Face `save_pretrained` directory -> our `ReformerLM` (+ tokenizer).

The configuration and weight mapping are `reformer_keras.convert` (docs/pretrained.md)."""

import logging
import os

from reformer_keras.convert import hf_config, hf_weights


def hf_tokenizer(directory, vocab_size):
    """The tokenizer of a checkpoint directory: `SentencePieceTokenizer(spiece.model)` when the
    file is there, `ByteTokenizer` (byte b -> id b + 2, Hugging Face's enwik8 convention) for a
    258-token vocabulary, else None."""
    spiece = os.path.join(directory, "spiece.model")
    if os.path.isfile(spiece):
        from reformer_keras.tokenizers.subword import (  # pylint: disable=C0415
            SentencePieceTokenizer)
        tokenizer = SentencePieceTokenizer(spiece)
        if tokenizer.vocab_size != vocab_size:
            raise hf_config.HFConfigError(
                f"{spiece}: {tokenizer.vocab_size} pieces, but config field `vocab_size` is "
                f"{vocab_size}.")
        return tokenizer
    if vocab_size == 258:
        from reformer_keras.tokenizers.text import ByteTokenizer  # pylint: disable=C0415
        return ByteTokenizer()
    return None


def from_hf(directory, hash_seed=None):
    """Builds the `ReformerLM` of a Hugging Face Reformer checkpoint directory.

    Args:
      directory: holds config.json and model.safetensors (or pytorch_model.bin, which needs
        PyTorch); spiece.model when the model has a SentencePiece vocabulary.
      hash_seed: LSH rotation seed used when config.json's `hash_seed` is null (default 0).
    Returns: (model, tokenizer or None). The model's logits equal Hugging Face's evaluation-mode
      logits (float32; `tests/convert`).
    Raises: HFConfigError / HFWeightsError (one line, naming the field or weight).
    """
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise hf_config.HFConfigError(f"{directory}: not a directory.")
    config = hf_config.read_config(directory)
    arguments = hf_config.lm_arguments(config, hash_seed=hash_seed)
    tensors, source = hf_weights.read_checkpoint(directory)
    tokenizer = hf_tokenizer(directory, arguments["vocab_size"])
    from reformer_keras.models.reformer_lm import ReformerLM  # pylint: disable=C0415
    model = ReformerLM(**arguments)
    model.build((None, None))
    hf_weights.assign(model, tensors)
    logging.info("Loaded Hugging Face Reformer %s (%s, %d layers %s).", directory, source,
                 arguments["num_layers"], "/".join(arguments["attention_types"]))
    return model, tokenizer

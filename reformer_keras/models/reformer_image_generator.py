"""`ReformerImageGenerator`: an autoregressive pixel model (imagenet64-style) on the backbone."""

import math

import keras
import numpy as np

from reformer_keras import media
from reformer_keras.layers.seeding import glorot_uniform
from reformer_keras.models import sampling
from reformer_keras.models.causal_lm_task import CausalLMTask
from reformer_keras.models.reformer_backbone import ReformerBackbone, stack_config
from reformer_keras.models.reformer_image_preprocessor import (PIXEL_VALUES,
                                                               ReformerImagePreprocessor,
                                                               check_image_shape)


@keras.saving.register_keras_serializable(package="reformer_keras")
class ReformerImageGenerator(CausalLMTask):
    """Causal model over the H*W*C sub-pixel values of an image, raster order.

    Inputs are `ReformerImagePreprocessor` token ids: start token (256 + class id, or 256)
    followed by the first H*W*C - 1 values; positions are axial over (H, W, C), so position p
    carries the (row, column, channel) of the value it predicts.

    Args:
      image_shape: (H, W, C).
      d_model, num_layers, num_heads, d_ff: sizes.
      num_classes: None, or the number of classes for class conditioning (class start token).
      axial_dims: per-axis position sizes summing to d_model (default: near-equal thirds).
      other `ReformerBackbone` options (attention_types, bucket_size, num_hashes, ...).
      config: instead of the sizes and options, a `ReformerConfig` with vocab_size
        256 + max(num_classes, 1) and axial_shape = image_shape (the task sets these, and
        causal=True; other values raise ValueError).

    Call: `model(token_ids)` or `model({"token_ids": ..., "padding_mask": ...})`, token_ids
      (B, L) int in [0, 256 + max(num_classes, 1)), L <= H*W*C -> logits (B, L, 256) float32.
    """

    def __init__(self, image_shape, *args, num_classes=None, config=None, **kwargs):
        names = ("d_model", "num_layers", "num_heads", "d_ff", "num_classes", "axial_dims")
        if len(args) > len(names):
            raise TypeError(f"ReformerImageGenerator takes at most {1 + len(names)} positional "
                            f"arguments (image_shape, {', '.join(names)}), got {1 + len(args)}.")
        if len(args) > 4:  # num_classes, axial_dims given by position
            extra = dict(zip(names[4:], args[4:]))
            num_classes = extra.get("num_classes", num_classes)
            if "axial_dims" in extra:
                kwargs["axial_dims"] = extra["axial_dims"]
            args = args[:4]
        self.image_shape = check_image_shape(image_shape)
        self.num_classes = num_classes
        preprocessor = ReformerImagePreprocessor(image_shape, num_classes, name="preprocessor")
        if config is None:  # positional arguments: d_model, num_layers, num_heads, d_ff
            kwargs.update(zip(("d_model", "num_layers", "num_heads", "d_ff"), args))
        elif args:
            raise ValueError("ReformerImageGenerator: pass either `config` or the model "
                             "options, not both.")
        config = stack_config(config, (), kwargs, "ReformerImageGenerator", causal=True,
                              vocab_size=preprocessor.vocab_size,
                              axial_shape=tuple(self.image_shape))
        super().__init__(**kwargs)
        self.preprocessor = preprocessor
        self.backbone = ReformerBackbone(config=config, name="backbone")
        self.lm_head = keras.layers.Dense(
            PIXEL_VALUES, name="lm_head",
            kernel_initializer=glorot_uniform(self.backbone.seed, "lm_head"))

    def sample_images(self, num, seed=None, class_ids=None, temperature=1.0, top_k=None,
                      top_p=None, use_cache=True):
        """Samples `num` images -> uint8 (num, H, W, C).

        Pixel 0 .. H*W*C - 2 come from `sampling.sample_tokens` (the cached
        `reformer_keras.generation.generate` when present, else the uncached loop); the last
        value from one forward at the full length (so the model is never fed more than
        H*W*C tokens). `class_ids`: (num,) ints for a class-conditional model.
        `use_cache=False` forces the uncached reference loop.
        """
        if isinstance(num, bool) or not isinstance(num, (int, np.integer)) or num < 1:
            raise ValueError(f"`num` must be a positive integer, got {num!r}.")
        prompt = self.preprocessor.start_ids(int(num), class_ids)
        length = self.preprocessor.sequence_length
        ids = sampling.sample_tokens(self, prompt, length - 1, temperature=temperature,
                                     top_k=top_k, top_p=top_p, seed=seed, use_cache=use_cache)
        logits = np.asarray(self(ids))[:, -1]
        rng = np.random.default_rng(None if seed is None else seed + 1)
        last = sampling.sample_from_logits(logits, rng, temperature, top_k, top_p)
        pixels = np.concatenate([ids[:, 1:], last[:, None]], axis=1)
        return self.preprocessor.images_from_tokens(pixels)

    def save_image_grid(self, path, images=None, num=16, seed=None, class_ids=None, cols=None,
                        scale=4, **sample_kwargs):
        """Writes a PNG grid (media.write_png_grid) of `images` (uint8 (N, H, W, C)), or of
        `num` fresh samples. Returns `path`. C must be 1 or 3 for a PNG."""
        if images is None:
            images = self.sample_images(num, seed=seed, class_ids=class_ids, **sample_kwargs)
        cols = cols or math.ceil(math.sqrt(len(images)))
        return media.write_png_grid(images, path, cols=cols, scale=scale)

    def get_config(self):
        config = super().get_config()
        backbone = self.backbone.config.to_dict()
        for key in ("causal", "vocab_size", "axial_shape", "max_len"):  # set by the task
            backbone.pop(key)
        config.update(backbone)
        config.update(image_shape=list(self.image_shape), num_classes=self.num_classes)
        return config

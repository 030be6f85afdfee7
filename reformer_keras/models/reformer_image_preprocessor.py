"""`ReformerImagePreprocessor`: uint8 images -> pixel token sequences for autoregressive models.

An image (H, W, C) is read in raster order (row, column, channel), one token per sub-pixel
value (0..255). The model input is the start token followed by all values but the last; the
targets are all H*W*C values, so position p of the input predicts value p. The start token is
256 + class_id for a class-conditional model, otherwise 256.
"""

import keras
import numpy as np
import tensorflow as tf

PIXEL_VALUES = 256


def check_image_shape(image_shape):
    shape = tuple(int(s) for s in image_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"`image_shape` must be (height, width, channels) of positive ints, "
                         f"got {image_shape!r}.")
    return shape


@keras.saving.register_keras_serializable(package="reformer_keras")
class ReformerImagePreprocessor(keras.layers.Layer):
    """uint8 images (B, H, W, C) [+ class ids (B,)] -> (token_ids (B, H*W*C) int32,
    targets (B, H*W*C) int32), usable eagerly and in `tf.data.Dataset.map`.

    Args:
      image_shape: (H, W, C).
      num_classes: None (unconditional) or the number of classes (start token 256 + class).

    Call: `pre(images, class_ids=None)` -> (token_ids, targets). `images_from_tokens(ids)` is
    the inverse for pixel ids (B, H*W*C) -> uint8 (B, H, W, C).
    Raises ValueError for a wrong dtype (not uint8), rank or shape, missing / unexpected class
    ids, or class ids out of range (checked when the ids are concrete).
    """

    def __init__(self, image_shape, num_classes=None, **kwargs):
        super().__init__(**kwargs)
        self.image_shape = check_image_shape(image_shape)
        if num_classes is not None and (isinstance(num_classes, bool) or
                                        not isinstance(num_classes, int) or num_classes < 1):
            raise ValueError(f"`num_classes` must be None or an int >= 1, got {num_classes!r}.")
        self.num_classes = num_classes
        self.built = True  # no weights

    @property
    def sequence_length(self):
        h, w, c = self.image_shape
        return h * w * c

    @property
    def vocab_size(self):
        """Input vocabulary: 256 values + one start token per class (or one)."""
        return PIXEL_VALUES + (self.num_classes or 1)

    def start_ids(self, batch_size, class_ids=None):
        """int32 (B, 1) start tokens (256 + class id, or 256)."""
        if self.num_classes is None:
            if class_ids is not None:
                raise ValueError("`class_ids` given, but this model is unconditional "
                                 "(num_classes=None).")
            return np.full((batch_size, 1), PIXEL_VALUES, np.int32)
        if class_ids is None:
            raise ValueError(f"This model is class-conditional (num_classes={self.num_classes}):"
                             " pass `class_ids`.")
        ids = np.asarray(class_ids)
        if ids.dtype.kind not in "iu" or ids.shape != (batch_size,):
            raise ValueError(f"`class_ids` must be {batch_size} integers, got dtype {ids.dtype} "
                             f"shape {ids.shape}.")
        if ids.size and (ids.min() < 0 or ids.max() >= self.num_classes):
            raise ValueError(f"`class_ids` must be in [0, num_classes={self.num_classes}), got "
                             f"values in [{ids.min()}, {ids.max()}].")
        return (PIXEL_VALUES + ids).astype(np.int32)[:, None]

    def _check_images(self, images):
        if not isinstance(images, tf.Tensor):
            images = np.asarray(images)
        dtype = images.dtype.name if isinstance(images, tf.Tensor) else str(images.dtype)
        if dtype != "uint8":
            raise ValueError(f"`images` must have dtype uint8 (values 0..255), got {dtype}.")
        shape = tuple(images.shape)
        if len(shape) != 4 or tuple(shape[1:]) != self.image_shape:
            raise ValueError(f"`images` must have shape (batch, {', '.join(map(str, self.image_shape))}"
                             f"), got {shape}.")
        return tf.convert_to_tensor(images)

    def call(self, images, class_ids=None):
        images = self._check_images(images)
        batch = tf.shape(images)[0]
        targets = tf.reshape(tf.cast(images, tf.int32), (batch, self.sequence_length))
        if self.num_classes is None:
            if class_ids is not None:
                raise ValueError("`class_ids` given, but num_classes=None (unconditional).")
            start = tf.fill((batch, 1), PIXEL_VALUES)
        else:
            if class_ids is None:
                raise ValueError(f"Class-conditional preprocessor (num_classes="
                                 f"{self.num_classes}): pass `class_ids`.")
            if not isinstance(class_ids, tf.Tensor) or tf.executing_eagerly():
                self.start_ids(int(np.shape(class_ids)[0]), np.asarray(class_ids))
            start = PIXEL_VALUES + tf.reshape(tf.cast(class_ids, tf.int32), (batch, 1))
        token_ids = tf.concat([start, targets[:, :-1]], axis=1)
        return token_ids, targets

    def images_from_tokens(self, pixel_ids):
        """Pixel ids (B, H*W*C) in [0, 256) -> uint8 images (B, H, W, C) (NumPy)."""
        ids = np.asarray(pixel_ids)
        if ids.ndim != 2 or ids.shape[1] != self.sequence_length:
            raise ValueError(f"pixel ids must have shape (batch, {self.sequence_length}), got "
                             f"{ids.shape}.")
        if ids.size and (ids.min() < 0 or ids.max() >= PIXEL_VALUES):
            raise ValueError(f"pixel ids must be in [0, 256), got [{ids.min()}, {ids.max()}].")
        return ids.astype(np.uint8).reshape((-1,) + self.image_shape)

    def get_config(self):
        config = super().get_config()
        config.update(image_shape=list(self.image_shape), num_classes=self.num_classes)
        return config

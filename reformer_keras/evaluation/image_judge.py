"""An independent judge of class-conditional image samples: a scikit-learn classifier.

The judge is trained on real images only (it knows nothing of the generator) and must see
images in the same form as the generator produces them: `transform_images` (optional
downsampling by block averaging, then grey levels quantised) is applied to the real images it
is given at their original size, and a generator trained on transformed images emits images in
that form already (images of the transformed size are only quantised, which keeps them).

  judge = ImageJudge(levels=4, factor=2).fit(train_images, train_labels)
  judge.score(test_images, test_labels)           # held-out accuracy on real images
  judge.judge(samples, class_ids)                 # {"overall": .., "per_class": {c: ..}, ..}
  # samples: (N, H/factor, W/factor, 1) as generated; real images: (N, H, W, 1) as loaded

Images are uint8 (N, H, W, 1) (or (N, H, W)); labels / class ids int (N,).
"""

import numpy as np


def quantize_levels(images, levels):
    """uint8 images -> uint8 with only `levels` grey values, evenly spread over 0..255.

    Value v maps to round(round(v * (levels - 1) / 255) * 255 / (levels - 1)); levels=256 is
    the identity.
    """
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise ValueError(f"images must be uint8, got {images.dtype}")
    if isinstance(levels, bool) or not isinstance(levels, (int, np.integer)) or \
            not 2 <= levels <= 256:
        raise ValueError(f"levels must be an int in [2, 256], got {levels!r}")
    step = 255.0 / (levels - 1)
    return np.round(np.round(images / step) * step).astype(np.uint8)


def downsample(images, factor):
    """uint8 (N, H, W, C) -> uint8 (N, H/f, W/f, C) by averaging f x f blocks (rounded)."""
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"images must have rank 4 (N, H, W, C), got shape {images.shape}")
    if isinstance(factor, bool) or not isinstance(factor, (int, np.integer)) or factor < 1:
        raise ValueError(f"factor must be a positive int, got {factor!r}")
    n, h, w, c = images.shape
    if h % factor or w % factor:
        raise ValueError(f"image size {h}x{w} is not divisible by factor {factor}")
    if factor == 1:
        return images
    blocks = images.reshape(n, h // factor, factor, w // factor, factor, c).astype(np.float64)
    return np.round(blocks.mean(axis=(2, 4))).astype(np.uint8)


def transform_images(images, levels=256, factor=1):
    """The generator's image form: `downsample(images, factor)` then `quantize_levels`."""
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    return quantize_levels(downsample(images, factor), levels)


class ImageJudge:
    """A scikit-learn classifier on flattened, transformed images scaled to [0, 1].

    Args:
      levels, factor: the transform (`transform_images`) applied to every image it sees.
      kind: "logistic" (multinomial logistic regression) or "mlp" (one hidden layer of 256).
      seed: the classifier's random_state.
    """

    KINDS = ("logistic", "mlp")

    def __init__(self, levels=256, factor=1, kind="logistic", seed=0):
        if kind not in self.KINDS:
            raise ValueError(f"kind must be one of {self.KINDS}, got {kind!r}")
        quantize_levels(np.zeros(1, np.uint8), levels)  # validates levels
        self.levels, self.factor, self.kind, self.seed = levels, factor, kind, seed
        self.classifier, self.image_shape = None, None

    def _features(self, images):
        images = np.asarray(images)
        if images.ndim == 3:
            images = images[..., None]
        if self.image_shape is not None and images.shape[1:] == self.image_shape:
            images = quantize_levels(images, self.levels)  # already in the generator's form
        else:
            images = transform_images(images, self.levels, self.factor)
        if self.image_shape is not None and images.shape[1:] != self.image_shape:
            raise ValueError(f"the judge was fitted on images of shape {self.image_shape} "
                             f"(after its transform), got {images.shape[1:]}")
        return images.reshape(len(images), -1).astype(np.float64) / 255.0

    def fit(self, images, labels):
        """Fits on real images (uint8 (N, H, W[, 1])) and labels (N,); returns self."""
        from sklearn.linear_model import LogisticRegression  # pylint: disable=import-outside-toplevel
        from sklearn.neural_network import MLPClassifier  # pylint: disable=import-outside-toplevel
        labels = np.asarray(labels)
        if len(labels) != len(images) or len(labels) == 0:
            raise ValueError(f"need as many labels as images (> 0), got {len(labels)} labels "
                             f"for {len(images)} images")
        self.image_shape = None
        features = self._features(images)
        self.image_shape = transform_images(np.asarray(images)[:1], self.levels,
                                            self.factor).shape[1:]
        if self.kind == "logistic":
            self.classifier = LogisticRegression(C=1.0, max_iter=2000, random_state=self.seed)
        else:
            self.classifier = MLPClassifier(hidden_layer_sizes=(256,), alpha=1e-3,
                                            max_iter=300, early_stopping=True,
                                            random_state=self.seed)
        self.classifier.fit(features, labels)
        return self

    def predict(self, images):
        """int (N,) predicted classes."""
        if self.classifier is None:
            raise ValueError("the judge is not fitted: call fit() first")
        return np.asarray(self.classifier.predict(self._features(images)))

    def score(self, images, labels):
        """Accuracy (float in [0, 1]) on labelled images, e.g. the real held-out split."""
        return float(np.mean(self.predict(images) == np.asarray(labels)))

    def judge(self, images, class_ids):
        """Judged accuracy of images generated for `class_ids` (int (N,)).

        Returns {"overall": fraction judged as their class, "per_class": {c: fraction},
        "count": N, "confusion": [[count of class r judged as c]]}.
        """
        class_ids = np.asarray(class_ids)
        if len(class_ids) != len(images):
            raise ValueError(f"need one class id per image, got {len(class_ids)} for "
                             f"{len(images)} images")
        predicted = self.predict(images)
        classes = sorted(int(c) for c in np.unique(class_ids))
        known = [int(c) for c in self.classifier.classes_]
        confusion = [[int(np.sum((class_ids == r) & (predicted == c))) for c in known]
                     for r in classes]
        return dict(overall=float(np.mean(predicted == class_ids)),
                    per_class={c: float(np.mean(predicted[class_ids == c] == c))
                               for c in classes},
                    count=int(len(class_ids)), confusion=confusion)

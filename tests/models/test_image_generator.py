"""Image preprocessor against a raster-order reference, sampling and the PNG grid."""

import numpy as np
import pytest
from PIL import Image

from reformer_keras.models import ReformerImageGenerator, ReformerImagePreprocessor
from reformer_keras.models import sampling


def _model(num_classes=3, image_shape=(4, 3, 2), **kw):
    config = dict(d_model=24, num_layers=2, num_heads=2, d_ff=32,
                  attention_types=["lsh", "local"], bucket_size=4, seed=2)
    config.update(kw)
    return ReformerImageGenerator(image_shape=image_shape, num_classes=num_classes, **config)


def test_preprocessor_matches_raster_reference():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (2, 4, 3, 2)).astype(np.uint8)
    pre = ReformerImagePreprocessor((4, 3, 2), num_classes=3)
    tokens, targets = (np.asarray(t) for t in pre(images, class_ids=np.array([2, 0])))
    for b, cls in enumerate([2, 0]):
        raster = [images[b, r, c, ch] for r in range(4) for c in range(3) for ch in range(2)]
        assert targets[b].tolist() == raster
        assert tokens[b].tolist() == [256 + cls] + raster[:-1]
    assert tokens.dtype == targets.dtype == np.int32 and tokens.shape == (2, 24)
    np.testing.assert_array_equal(pre.images_from_tokens(targets), images)
    uncond = ReformerImagePreprocessor((4, 3, 2))
    assert np.asarray(uncond(images)[0])[:, 0].tolist() == [256, 256]


@pytest.mark.parametrize("images,pattern", [
    (np.zeros((2, 4, 3, 2), np.float32), "dtype uint8"),
    (np.zeros((2, 4, 3, 1), np.uint8), r"shape \(batch, 4, 3, 2\)"),
    (np.zeros((4, 3, 2), np.uint8), r"shape \(batch, 4, 3, 2\)"),
])
def test_bad_images_raise(images, pattern):
    pre = ReformerImagePreprocessor((4, 3, 2))
    with pytest.raises(ValueError, match=pattern):
        pre(images)


def test_bad_class_ids_raise():
    pre = ReformerImagePreprocessor((4, 3, 2), num_classes=3)
    images = np.zeros((2, 4, 3, 2), np.uint8)
    with pytest.raises(ValueError, match="class_ids"):
        pre(images)
    with pytest.raises(ValueError, match=r"class_ids.*\[0, num_classes=3\)"):
        pre(images, class_ids=np.array([1, 3]))
    model = _model()
    with pytest.raises(ValueError, match="pass `class_ids`"):
        model.sample_images(2, seed=0)
    with pytest.raises(ValueError, match="unconditional"):
        _model(num_classes=None).sample_images(2, class_ids=[0, 1])
    with pytest.raises(ValueError, match="`num` must be a positive integer"):
        model.sample_images(0, class_ids=[])


def test_sample_images_and_png_grid(tmp_path):
    model = _model(image_shape=(2, 2, 2))                          # LSH + local
    kw = dict(class_ids=np.array([0, 1, 2]), use_cache=False)
    images = model.sample_images(3, seed=5, **kw)
    assert images.dtype == np.uint8 and images.shape == (3, 2, 2, 2)
    np.testing.assert_array_equal(images, model.sample_images(3, seed=5, **kw))   # seeded
    path = model.save_image_grid(tmp_path / "x" / "grey.png", images=images[..., :1], scale=1)
    with Image.open(path) as png:
        assert png.size == (2 * 2, 2 * 2)

    rgb = ReformerImageGenerator(image_shape=(2, 3, 3), d_model=12, num_layers=1, num_heads=2,
                                 d_ff=16, attention_types=["full"], seed=1)
    path = rgb.save_image_grid(tmp_path / "grid.png", num=5, seed=1, cols=3, scale=2,
                               use_cache=False)
    with Image.open(path) as png:
        assert png.size == (3 * 3 * 2, 2 * 2 * 2) and png.mode == "RGB"


def test_greedy_samples_are_the_models_argmax():
    """Exact (full / local) attention: each greedy value is the argmax of the model's
    teacher-forced logits given the previous values."""
    model = _model(image_shape=(3, 2, 2), attention_types=["full", "local"])
    greedy = model.sample_images(2, seed=0, class_ids=np.array([1, 2]), temperature=0,
                                 use_cache=False)
    tokens, targets = model.preprocessor(greedy, class_ids=np.array([1, 2]))
    np.testing.assert_array_equal(np.asarray(model(tokens)).argmax(-1), np.asarray(targets))


def test_cached_generation_backend_matches_uncached_greedy():
    """With exact (full / local) attention, greedy images from the cached generation module
    equal those of the uncached reference loop."""
    model = _model(image_shape=(3, 2, 2), attention_types=["full", "local"])
    kw = dict(seed=0, class_ids=np.array([2, 0]), temperature=0)
    cached = model.sample_images(2, **kw)
    assert cached.dtype == np.uint8 and cached.shape == (2, 3, 2, 2)
    np.testing.assert_array_equal(cached, model.sample_images(2, use_cache=False, **kw))


def test_uncached_sampler_respects_top_k_and_prompt():
    model = _model(num_classes=None, image_shape=(2, 2, 2))
    prompt = np.full((2, 1), 256, np.int32)
    out = sampling.uncached_generate(model, prompt, 4, top_k=1, seed=0)
    greedy = sampling.uncached_generate(model, prompt, 4, temperature=0)
    np.testing.assert_array_equal(out, greedy)
    assert (out[:, 0] == 256).all() and out.shape == (2, 5)
    with pytest.raises(ValueError, match="empty"):
        sampling.check_prompt(np.zeros((1, 0), np.int32), 257)
    with pytest.raises(ValueError, match="integer"):
        sampling.check_prompt(np.zeros((1, 2), np.float32), 257)
    with pytest.raises(ValueError, match=r"vocab_size=257"):
        sampling.check_prompt(np.full((1, 2), 300), 257)

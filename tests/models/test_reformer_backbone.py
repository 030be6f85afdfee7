"""The backbone's pass-through options: every task model hands on the same set."""

import numpy as np

from reformer_keras.config import ReformerConfig
from reformer_keras.models import ReformerClassifier, ReformerLM
from reformer_keras.models.reformer_backbone import ReformerBackbone

OPTIONS = ("vocab_size", "d_model", "num_layers", "num_heads", "d_ff", "head_dim",
           "attention_types", "causal", "bucket_size", "num_hashes", "num_buckets",
           "attn_chunks", "query_chunk_len", "rotations_per_example", "local_chunk_size",
           "shared_qk", "max_len", "axial_shape", "axial_dims", "position_init_stddev",
           "dropout", "attention_dropout", "ff_chunk_size", "ff_chunked_backward",
           "reversible", "stored_top_blocks", "seed", "attention_options", "layer_norm_epsilon",
           "ff_activation")


def test_backbone_options_are_the_config_fields():
    """The backbone's options are the config's fields, in its positional order, and its
    saved config holds exactly them (besides the Keras layer keys)."""
    assert ReformerConfig.field_names() == OPTIONS
    kwargs = dict(seed=1, name="x", max_len=8)
    assert ReformerConfig.pop_fields(kwargs) == dict(seed=1, max_len=8)
    assert kwargs == dict(name="x")
    backbone = ReformerBackbone(11, 16, 1, 2, 32, None, ("local",), False, name="b")
    assert backbone.attention_types == ("local",) and backbone.causal is False
    saved = backbone.get_config()
    assert set(saved) - set(OPTIONS) == {"name", "trainable", "dtype"}
    assert ReformerBackbone.from_config(saved).get_config() == saved


def test_task_models_hand_lsh_options_to_their_attention_layers():
    """An option given to a task model reaches the LSH layer and survives get_config."""
    for cls, extra in ((ReformerLM, {}), (ReformerClassifier, dict(num_classes=3))):
        model = cls(vocab_size=11, d_model=16, num_layers=1, num_heads=2, d_ff=32, bucket_size=4,
                    num_hashes=2, rotations_per_example=True, query_chunk_len=8, seed=0,
                    max_len=32, stored_top_blocks=1, **extra)
        model(np.zeros((2, 16), "int32"))
        layers = [layer for layer in model._flatten_layers()
                  if type(layer).__name__ == "LSHSelfAttention"]
        assert len(layers) == 1 and layers[0].rotations_per_example, cls
        assert layers[0].query_chunk_len == 8
        again = cls.from_config(model.get_config())
        assert again.backbone.rotations_per_example and again.backbone.query_chunk_len == 8
        assert again.backbone.stack.stored_top_blocks == 1


def test_positions_start_at_the_token_embeddings_scale():
    """By default the learned and the axial position tables are drawn at d_model ** -0.5, the
    token table's scale (LSH then hashes positions as strongly as content); the option sets
    it, survives get_config and rejects non-positive values."""
    import pytest  # pylint: disable=import-outside-toplevel
    for axial in (None, [16, 16]):
        backbone = ReformerBackbone(300, 64, 1, 2, 32, max_len=256, axial_shape=axial, seed=0)
        backbone.build((None, 256))
        tokens = backbone.token_embedding.embeddings.numpy()
        positions = np.concatenate([w.numpy().ravel()
                                    for w in backbone.position_embedding.weights])
        assert abs(tokens.std() / 64**-0.5 - 1) < 0.05
        assert abs(positions.std() / tokens.std() - 1) < 0.1, axial
        small = ReformerBackbone(300, 64, 1, 2, 32, max_len=256, axial_shape=axial,
                                 position_init_stddev=0.02, seed=0)
        small.build((None, 256))
        got = np.concatenate([w.numpy().ravel() for w in small.position_embedding.weights])
        assert abs(got.std() / 0.02 - 1) < 0.1
        assert ReformerBackbone.from_config(small.get_config()).position_init_stddev == 0.02
    from reformer_keras.layers import AxialPositionalEmbedding  # pylint: disable=C0415
    assert AxialPositionalEmbedding([4, 4], [8, 24]).initializer_stddev == 32**-0.5
    for bad in (0, -1.0, "big", True):
        with pytest.raises(ValueError, match="position_init_stddev"):
            ReformerBackbone(300, 64, 1, 2, 32, position_init_stddev=bad)

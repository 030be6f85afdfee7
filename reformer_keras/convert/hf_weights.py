"""Reading a Hugging Face Reformer checkpoint and assigning it to a built `ReformerLM`.

`read_checkpoint(directory)` reads `model.safetensors` (or a sharded
`model.safetensors.index.json`) with NumPy alone, else `pytorch_model.bin` with PyTorch's safe
loader (`torch.load(..., weights_only=True)`). The safetensors format: an 8-byte little-endian
header length N, N bytes of JSON {name: {"dtype", "shape", "data_offsets": [begin, end]}}, then
the raw little-endian buffers. `assign(model, tensors)` maps every Hugging Face weight onto the
model's variables (PyTorch Linear weights (out, in) are transposed to Keras (in, out)); a
missing, unexpected or wrongly shaped weight raises `HFWeightsError` naming it.
"""

import json
import os
import struct

import numpy as np

_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": np.uint16,
           "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8,
           "BOOL": np.bool_}


class HFWeightsError(ValueError):
    """A corrupt, incomplete or mismatched Hugging Face checkpoint (the message says what)."""


def read_safetensors(path):
    """path -> {name: float32 / int ndarray}. One-line `HFWeightsError` on a corrupt file."""
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise HFWeightsError(f"{path}: corrupt safetensors file (shorter than its 8-byte header).")
    (size,) = struct.unpack("<Q", blob[:8])
    if size > len(blob) - 8:
        raise HFWeightsError(f"{path}: corrupt safetensors file (header length {size} exceeds "
                             f"the file's {len(blob)} bytes).")
    try:
        header = json.loads(blob[8:8 + size].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise HFWeightsError(f"{path}: corrupt safetensors header ({err}).") from None
    data = memoryview(blob)[8 + size:]
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype = _DTYPES[info["dtype"]]
            shape = tuple(int(s) for s in info["shape"])
            begin, end = (int(o) for o in info["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise HFWeightsError(
                f"{path}: corrupt safetensors entry {name!r} ({info!r}).") from None
        count = int(np.prod(shape, dtype=np.int64))
        if not 0 <= begin <= end <= len(data) or end - begin != count * np.dtype(dtype).itemsize:
            raise HFWeightsError(f"{path}: corrupt safetensors entry {name!r}: byte range "
                                 f"[{begin}, {end}) does not hold {info['dtype']} {list(shape)} "
                                 f"within the {len(data)}-byte buffer (truncated file?).")
        array = np.frombuffer(data[begin:end], dtype=np.dtype(dtype).newbyteorder("<"))
        if info["dtype"] == "BF16":
            array = (array.astype(np.uint32) << 16).view(np.float32)
        tensors[name] = array.reshape(shape).copy()
    return tensors


def read_torch_bin(path):
    """pytorch_model.bin -> {name: ndarray}, with `torch.load(weights_only=True)`."""
    try:
        import torch  # pylint: disable=import-outside-toplevel
    except ImportError:
        raise HFWeightsError(f"{path}: reading a .bin checkpoint needs PyTorch (pip install "
                             "torch), or convert it to model.safetensors first.") from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pylint: disable=broad-except
        raise HFWeightsError(f"{path}: not a readable PyTorch checkpoint "
                             f"({type(err).__name__}: {str(err).splitlines()[0]}).") from None
    if not isinstance(state, dict):
        raise HFWeightsError(f"{path}: expected a state dict, got {type(state).__name__}.")
    return {k: (v.float() if v.is_floating_point() else v).numpy() for k, v in state.items()}


def read_checkpoint(directory):
    """The weights of a `save_pretrained` directory -> ({name: ndarray}, file name read)."""
    single = os.path.join(directory, "model.safetensors")
    index = os.path.join(directory, "model.safetensors.index.json")
    binary = os.path.join(directory, "pytorch_model.bin")
    if os.path.isfile(single):
        return read_safetensors(single), "model.safetensors"
    if os.path.isfile(index):
        try:
            with open(index, encoding="utf-8") as f:
                files = sorted(set(json.load(f)["weight_map"].values()))
        except (OSError, KeyError, TypeError, AttributeError, json.JSONDecodeError) as err:
            raise HFWeightsError(f"{index}: not a valid safetensors index ({err}).") from None
        tensors = {}
        for name in files:
            tensors.update(read_safetensors(os.path.join(directory, name)))
        return tensors, "model.safetensors.index.json"
    if os.path.isfile(binary):
        return read_torch_bin(binary), "pytorch_model.bin"
    raise HFWeightsError(f"{directory}: no model.safetensors, model.safetensors.index.json or "
                         "pytorch_model.bin.")


def _targets(model):
    """{Hugging Face name: (variable, Hugging Face shape, transform of the numpy array)} for a
    built ReformerLM."""
    backbone = model.backbone
    d, h, dh = backbone.d_model, backbone.num_heads, backbone.head_dim
    targets = {}

    def same(name, variable):
        targets[name] = (variable, tuple(variable.shape), lambda w: w)

    def transposed(name, variable):  # torch Linear (out, in) -> Keras (in, out)
        targets[name] = (variable, tuple(variable.shape)[::-1], lambda w: w.T)

    def heads_in(name, variable):  # (H*dh, d) -> (d, H, dh)
        targets[name] = (variable, (h * dh, d), lambda w: w.T.reshape(d, h, dh))

    same("reformer.embeddings.word_embeddings.weight", backbone.token_embedding.embeddings)
    if backbone.axial_shape is not None:
        for i, table in enumerate(backbone.position_embedding.axis_embeddings):
            shape = [1] * len(backbone.axial_shape) + [table.shape[1]]
            shape[i] = table.shape[0]
            targets[f"reformer.embeddings.position_embeddings.weights.{i}"] = (
                table, tuple(shape), lambda w, t=tuple(table.shape): w.reshape(t))
    else:
        same("reformer.embeddings.position_embeddings.embedding.weight",
             backbone.position_embedding.embeddings)
    for i, (f, g) in enumerate(backbone.stack.blocks):
        p = f"reformer.encoder.layers.{i}."
        same(p + "attention.layer_norm.weight", f.norm.gamma)
        same(p + "attention.layer_norm.bias", f.norm.beta)
        a = p + "attention.self_attention."
        if f.layer.shared_qk:
            heads_in(a + "query_key.weight", f.layer.qk_kernel)
        else:
            heads_in(a + "query.weight", f.layer.q_kernel)
            heads_in(a + "key.weight", f.layer.k_kernel)
        heads_in(a + "value.weight", f.layer.v_kernel)
        targets[p + "attention.output.dense.weight"] = (
            f.layer.output_kernel, (d, h * dh), lambda w: w.T.reshape(h, dh, d))
        same(p + "feed_forward.layer_norm.weight", g.norm.gamma)
        same(p + "feed_forward.layer_norm.bias", g.norm.beta)
        transposed(p + "feed_forward.dense.dense.weight", g.layer.inner_kernel)
        same(p + "feed_forward.dense.dense.bias", g.layer.inner_bias)
        transposed(p + "feed_forward.output.dense.weight", g.layer.outer_kernel)
        same(p + "feed_forward.output.dense.bias", g.layer.outer_bias)
    same("reformer.encoder.layer_norm.weight", backbone.final_norm.gamma)
    same("reformer.encoder.layer_norm.bias", backbone.final_norm.beta)
    transposed("lm_head.decoder.weight", model.lm_head.kernel)
    same("lm_head.decoder.bias", model.lm_head.bias)
    return targets


def assign(model, tensors):
    """Sets every variable of the built ReformerLM `model` from `tensors` ({HF name: ndarray}).

    `lm_head.bias` (the head's bias parameter, tied to `lm_head.decoder.bias` in older
    checkpoints) stands in for a missing `lm_head.decoder.bias`. Raises `HFWeightsError` on a
    missing, unexpected or wrongly shaped weight, before any variable changes.
    """
    tensors = dict(tensors)
    if "lm_head.decoder.bias" not in tensors and "lm_head.bias" in tensors:
        tensors["lm_head.decoder.bias"] = tensors["lm_head.bias"]
    tensors.pop("lm_head.bias", None)
    targets = _targets(model)
    missing = [name for name in targets if name not in tensors]
    if missing:
        raise HFWeightsError(f"checkpoint is missing {len(missing)} weight(s) the configuration "
                             f"needs, first: {missing[0]!r} (does config.json match the "
                             "checkpoint?).")
    unexpected = [name for name in tensors if name not in targets]
    if unexpected:
        raise HFWeightsError(f"checkpoint has {len(unexpected)} weight(s) the configuration does "
                             f"not use, first: {unexpected[0]!r} (does config.json's attn_layers "
                             "match the checkpoint?).")
    values = []
    for name, (variable, shape, transform) in targets.items():
        array = np.asarray(tensors[name])
        if tuple(array.shape) != shape:
            raise HFWeightsError(f"weight {name!r} has shape {list(array.shape)}; the "
                                 f"configuration needs {list(shape)}.")
        if not np.issubdtype(array.dtype, np.floating) or not np.all(np.isfinite(array)):
            raise HFWeightsError(f"weight {name!r} is not a finite float array.")
        values.append((variable, transform(array).astype(np.float32)))
    for variable, value in values:
        variable.assign(value)

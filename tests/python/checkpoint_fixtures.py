"""Synthetic checkpoints for the converter tests, written with tools/bevt_pth.py (no torch here).

  * encoder_pkl(weights, path): a file shaped like OpenAI's encoder.pkl: a whole pickled dall_e.encoder.Encoder
    (module objects with their attribute dicts, _parameters OrderedDicts of nn.Parameters rebuilt through
    torch._utils._rebuild_parameter, torch.device attributes), holding the given blocks.* weights;
  * save_legacy(obj, path): the pre-1.6 torch.save stream (magic number, protocol, sys info, object pickle,
    storage keys, raw storages), including storage views;
  * tiny_dalle_weights(...): random blocks.* tensors with the official names for a small encoder.

Command line (used by tests/test_convert.cpp):
    checkpoint_fixtures.py encoder-pkl WEIGHTS.safetensors OUT.pkl
"""
import collections
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
import bevt_pth as bp  # noqa: E402

OD = collections.OrderedDict
DEVICE = bp.Call("torch", "device", ("cpu",))


def _module(module, name, params=None, children=None, **attrs):
    state = {
        "training": False,
        "_parameters": OD(params or {}),
        "_buffers": OD(),
        "_non_persistent_buffers_set": set(),
        "_backward_hooks": OD(),
        "_forward_hooks": OD(),
        "_forward_pre_hooks": OD(),
        "_state_dict_hooks": OD(),
        "_load_state_dict_pre_hooks": OD(),
        "_modules": OD(children or {}),
    }
    state.update(attrs)
    return bp.Object(module, name, state)


def _param(t):
    return bp.Tensor(t.dtype, t.shape, array=t.numpy(), parameter=True)


def _conv(w, prefix, use_float16=True):
    wt, bt = w[prefix + ".w"], w[prefix + ".b"]
    n_out, n_in, kw = wt.shape[0], wt.shape[1], wt.shape[2]
    return _module("dall_e.utils", "Conv2d", OD(w=_param(wt), b=_param(bt)), n_in=n_in, n_out=n_out, kw=kw,
                   use_float16=use_float16, device=DEVICE, requires_grad=False)


def _relu():
    return _module("torch.nn.modules.activation", "ReLU", inplace=False)


def _sequential(children):
    return _module("torch.nn.modules.container", "Sequential", children=children)


def encoder_object(w):
    """The pickled-object graph of a dall_e Encoder holding weights w (name -> bevt_pth.Tensor)."""
    groups = sorted({int(k.split(".")[1][len("group_"):]) for k in w if k.startswith("blocks.group_")})
    n_blk = len({k.split(".")[2] for k in w if k.startswith("blocks.group_1.")})
    blocks = OD(input=_conv(w, "blocks.input"))
    for g in groups:
        kids = OD()
        for b in range(1, n_blk + 1):
            p = f"blocks.group_{g}.block_{b}"
            res = OD()
            for i in range(1, 5):
                res[f"relu_{i}"] = _relu()
                res[f"conv_{i}"] = _conv(w, f"{p}.res_path.conv_{i}")
            n_out = w[f"{p}.res_path.conv_4.w"].shape[0]
            n_in = w[f"{p}.res_path.conv_1.w"].shape[1]
            idp = (_conv(w, f"{p}.id_path") if f"{p}.id_path.w" in w
                   else _module("torch.nn.modules.linear", "Identity"))
            kids[f"block_{b}"] = _module("dall_e.encoder", "EncoderBlock",
                                         children=OD(id_path=idp, res_path=_sequential(res)), n_in=n_in,
                                         n_out=n_out, n_layers=len(groups) * n_blk, device=DEVICE,
                                         requires_grad=False, n_hid=n_out // 4,
                                         post_gain=1.0 / (len(groups) * n_blk) ** 2)
        if g != groups[-1]:
            kids["pool"] = _module("torch.nn.modules.pooling", "MaxPool2d", kernel_size=2, stride=2, padding=0,
                                   dilation=1, return_indices=False, ceil_mode=False)
        blocks[f"group_{g}"] = _sequential(kids)
    blocks["output"] = _sequential(OD(relu=_relu(), conv=_conv(w, "blocks.output.conv", use_float16=False)))
    n_hid, in_ch = w["blocks.input.w"].shape[0], w["blocks.input.w"].shape[1]
    return _module("dall_e.encoder", "Encoder", children=OD(blocks=_sequential(blocks)), group_count=len(groups),
                   n_hid=n_hid, n_blk_per_group=n_blk, input_channels=in_ch,
                   vocab_size=w["blocks.output.conv.w"].shape[0], device=DEVICE, requires_grad=False,
                   use_mixed_precision=True)


def encoder_pkl(w, path):
    bp.save(encoder_object(w), path)


def tiny_dalle_weights(n_hid=8, vocab=16, n_blk=2, groups=4, seed=0):
    rng = np.random.default_rng(seed)
    w = OD()

    def conv(name, n_in, n_out, k):
        w[name + ".w"] = bp.Tensor.from_numpy(rng.standard_normal((n_out, n_in, k, k)).astype(np.float32))
        w[name + ".b"] = bp.Tensor.from_numpy(rng.standard_normal(n_out).astype(np.float32))

    conv("blocks.input", 3, n_hid, 7)
    width = n_hid
    for g in range(1, groups + 1):
        out = n_hid * 2 ** (g - 1)
        for b in range(1, n_blk + 1):
            p = f"blocks.group_{g}.block_{b}"
            n_in = width if b == 1 else out
            if n_in != out:
                conv(p + ".id_path", n_in, out, 1)
            conv(p + ".res_path.conv_1", n_in, out // 4, 3)
            conv(p + ".res_path.conv_2", out // 4, out // 4, 3)
            conv(p + ".res_path.conv_3", out // 4, out // 4, 3)
            conv(p + ".res_path.conv_4", out // 4, out, 1)
        width = out
    conv("blocks.output.conv", width, vocab, 1)
    return w


def save_legacy(obj, path, views=None):
    """torch < 1.6's stream format. `views` maps id(tensor) -> (root tensor, element offset, view size): the
    tensor's storage is then written as a view of root's storage, as old torch did for storage slices."""
    views = views or {}
    roots, order = {}, []

    def root_key(t):
        if id(t) not in roots:
            roots[id(t)] = str(len(order))
            order.append(t)
        return roots[id(t)]

    def storage_id(t):
        if id(t) in views:
            root, off, size = views[id(t)]
            k = root_key(root)
            return ("storage", bp._GlobalRef("torch", root.dtype.storage), k, "cpu", root.numel, (k + "v", off, size))
        return ("storage", bp._GlobalRef("torch", t.dtype.storage), root_key(t), "cpu", t.numel, None)

    def dumps(x, sid=None):
        return bp._Pickler(sid).dumps(x)

    parts = [dumps(bp.MAGIC_NUMBER), dumps(bp.LEGACY_PROTOCOL_VERSION),
             dumps({"protocol_version": bp.LEGACY_PROTOCOL_VERSION, "little_endian": True,
                    "type_sizes": {"short": 2, "int": 4, "long": 4}})]
    parts.append(dumps(obj, storage_id))
    parts.append(dumps(list(order and [root_key(t) for t in order])))
    with open(path, "wb") as f:
        for p in parts:
            f.write(p)
        for t in order:
            f.write(struct.pack("<q", t.numel))
            f.write(t.tobytes())


def main(argv):
    if len(argv) == 3 and argv[0] == "encoder-pkl":
        w, _ = bp.load_safetensors(argv[1])
        encoder_pkl(w, argv[2])
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

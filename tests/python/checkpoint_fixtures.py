"""Checkpoints for the converter tests, written with torch.save from real tensors and real nested objects.

The classes of the packages whose objects checkpoints carry (OpenAI's dall_e modules, mmcv's ConfigDict, yacs's
and fvcore's CfgNode, mmengine's HistoryBuffer) are defined here under those exact module names, so that pickle
writes the same globals as the originals do; none of those packages is installed or needed.

  * encoder_module(weights): a dall_e.encoder.Encoder (nn.Module: dall_e.utils.Conv2d, EncoderBlock, torch.nn
    Sequential, ReLU, MaxPool2d, Identity, torch.device attributes) holding the given blocks.* weights;
    encoder_pkl(weights, path) torch.saves it whole, as OpenAI's encoder.pkl is;
  * tiny_dalle_weights(...): random blocks.* tensors with the official names for a small encoder;
  * ConfigDict (mmcv), YacsCfgNode and FvcoreCfgNode (Swin 2D, PySlowFast), HistoryBuffer (mmengine): the
    metadata objects those checkpoints carry;
  * swin3d_spec(...) / swin3d_checkpoint(...): the names, shapes and order of an official Video Swin state dict,
    as mmaction's Recognizer3D(SwinTransformer3D, I3DHead) saves it after fine-tuning (the model zoo's files)
    or as BEVT's pre-training saves it (2D patch embedding, mask token, decoders, vocabulary classifier, the
    frozen DALL-E encoder), optionally with the ema_* buffers mmcv's EMAHook registers; random values.

Command lines (used by tests/test_convert.cpp and tests/test_official_checkpoints.cpp, run with the Python of
bevt's torch):
    checkpoint_fixtures.py encoder-pkl WEIGHTS.safetensors OUT.pkl
    checkpoint_fixtures.py swin3d OUT.pth [--embed-dim 8 --depths 1,1,1,1 --heads 1,1,2,2 --window 2,4,4
        --classes 5 | --pretrain] [--ema] [--seed 0] [--drop NAME] [--add NAME]
"""
import collections
import math
import sys
import types

import torch
from torch import nn

OD = collections.OrderedDict


def _module(name):
    """The module object `name` (and its parents) in sys.modules, created empty when missing."""
    parts = name.split(".")
    for i in range(1, len(parts) + 1):
        full = ".".join(parts[:i])
        if full not in sys.modules:
            sys.modules[full] = types.ModuleType(full)
            if i > 1:
                setattr(sys.modules[".".join(parts[:i - 1])], parts[i - 1], sys.modules[full])
    return sys.modules[name]


def _register(module, cls):
    cls.__module__ = module
    setattr(_module(module), cls.__name__, cls)
    return cls


# ---- OpenAI's dall_e (attrs classes there; plain nn.Modules with the same attributes here) ----

class Conv2d(nn.Module):
    def __init__(self, n_in, n_out, kw, use_float16=True, device=torch.device("cpu"), requires_grad=False):
        super().__init__()
        self.n_in, self.n_out, self.kw = n_in, n_out, kw
        self.use_float16, self.device, self.requires_grad = use_float16, device, requires_grad
        w = torch.empty((n_out, n_in, kw, kw)).normal_(std=1 / math.sqrt(n_in * kw ** 2))
        self.w, self.b = nn.Parameter(w, requires_grad), nn.Parameter(torch.zeros(n_out), requires_grad)


class EncoderBlock(nn.Module):
    def __init__(self, n_in, n_out, n_layers, device=torch.device("cpu"), requires_grad=False):
        super().__init__()
        self.n_in, self.n_out, self.n_layers = n_in, n_out, n_layers
        self.device, self.requires_grad = device, requires_grad
        self.n_hid = n_out // 4
        self.post_gain = 1 / n_layers ** 2
        self.id_path = Conv2d(n_in, n_out, 1) if n_in != n_out else nn.Identity()
        h = self.n_hid
        self.res_path = nn.Sequential(OD([
            ("relu_1", nn.ReLU()), ("conv_1", Conv2d(n_in, h, 3)), ("relu_2", nn.ReLU()),
            ("conv_2", Conv2d(h, h, 3)), ("relu_3", nn.ReLU()), ("conv_3", Conv2d(h, h, 3)), ("relu_4", nn.ReLU()),
            ("conv_4", Conv2d(h, n_out, 1))]))


class Encoder(nn.Module):
    def __init__(self, group_count=4, n_hid=256, n_blk_per_group=2, input_channels=3, vocab_size=8192,
                 device=torch.device("cpu"), requires_grad=False, use_mixed_precision=True):
        super().__init__()
        self.group_count, self.n_hid, self.n_blk_per_group = group_count, n_hid, n_blk_per_group
        self.input_channels, self.vocab_size = input_channels, vocab_size
        self.device, self.requires_grad, self.use_mixed_precision = device, requires_grad, use_mixed_precision
        n_layers = group_count * n_blk_per_group
        blocks = OD(input=Conv2d(input_channels, n_hid, 7))
        width = n_hid
        for g in range(1, group_count + 1):
            out = n_hid * 2 ** (g - 1)
            kids = OD()
            for b in range(1, n_blk_per_group + 1):
                kids[f"block_{b}"] = EncoderBlock(width if b == 1 else out, out, n_layers)
            if g != group_count:
                kids["pool"] = nn.MaxPool2d(kernel_size=2)
            blocks[f"group_{g}"] = nn.Sequential(kids)
            width = out
        blocks["output"] = nn.Sequential(OD(relu=nn.ReLU(), conv=Conv2d(width, vocab_size, 1, use_float16=False)))
        self.blocks = nn.Sequential(blocks)


_register("dall_e.utils", Conv2d)
_register("dall_e.encoder", EncoderBlock)
_register("dall_e.encoder", Encoder)


def encoder_module(w):
    """A dall_e.encoder.Encoder whose state dict is w (name -> tensor with the official names)."""
    groups = sorted({int(k.split(".")[1][len("group_"):]) for k in w if k.startswith("blocks.group_")})
    n_blk = len({k.split(".")[2] for k in w if k.startswith("blocks.group_1.")})
    enc = Encoder(group_count=len(groups), n_hid=w["blocks.input.w"].shape[0], n_blk_per_group=n_blk,
                  input_channels=w["blocks.input.w"].shape[1], vocab_size=w["blocks.output.conv.w"].shape[0])
    enc.load_state_dict(w, strict=True)
    return enc


def encoder_pkl(w, path, legacy=False):
    torch.save(encoder_module(w), path, _use_new_zipfile_serialization=not legacy)


def tiny_dalle_weights(n_hid=8, vocab=16, n_blk=2, groups=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    w = OD()

    def conv(name, n_in, n_out, k):
        w[name + ".w"] = torch.randn((n_out, n_in, k, k), generator=g)
        w[name + ".b"] = torch.randn(n_out, generator=g)

    conv("blocks.input", 3, n_hid, 7)
    width = n_hid
    for gi in range(1, groups + 1):
        out = n_hid * 2 ** (gi - 1)
        for b in range(1, n_blk + 1):
            p = f"blocks.group_{gi}.block_{b}"
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


# ---- metadata objects of mmcv, yacs/fvcore and mmengine ----

class ConfigDict(dict):
    """mmcv.utils.config.ConfigDict (an addict.Dict: a dict whose pickled state is the dict itself)."""

    def __getstate__(self):
        return self

    def __setstate__(self, state):
        self.update(state)


class CfgNode(dict):
    """yacs.config.CfgNode / fvcore.common.config.CfgNode: a dict with an attribute dict of flags."""

    def __init__(self, init=None):
        super().__init__(init or {})
        self.__dict__["__immutable__"] = True
        self.__dict__["__deprecated_keys__"] = set()
        self.__dict__["__new_allowed__"] = False


class HistoryBuffer:
    """mmengine.logging.history_buffer.HistoryBuffer: numpy arrays of logged scalars."""

    def __init__(self, values):
        import numpy as np
        self.max_length = 1000000
        self._log_history = np.asarray(values, dtype=np.float64)
        self._count_history = np.ones(len(values), dtype=np.int64)


_register("mmcv.utils.config", ConfigDict)
_register("mmengine.logging.history_buffer", HistoryBuffer)
YacsCfgNode = _register("yacs.config", type("CfgNode", (CfgNode,), {}))
FvcoreCfgNode = _register("fvcore.common.config", type("CfgNode", (YacsCfgNode,), {}))


# ---- official Video Swin / BEVT state dicts ----

def swin3d_spec(embed_dim=96, depths=(2, 2, 6, 2), heads=(3, 6, 12, 24), window=(8, 7, 7), patch=(2, 4, 4),
                in_chans=3, classes=400, pretrain=False, vocab=8192, dalle_hid=8):
    """[(name, shape, dtype)] in state-dict order: parameters before buffers within a module, modules in the
    order SwinTransformer3D (mmaction swin_transformer.py; BEVT's swin_transformer_bevt.py) registers them.
    Fine-tune: backbone.* then cls_head.fc_cls.*; pre-train: the BEVT extras and cls_head.lm_head/vae_encoder."""
    f, i64 = torch.float32, torch.int64
    C, out = embed_dim, []

    def add(name, *shape, dtype=f):
        out.append((name, tuple(shape), dtype))

    add("backbone.patch_embed.proj.weight", C, in_chans, *patch)
    add("backbone.patch_embed.proj.bias", C)
    add("backbone.patch_embed.norm.weight", C)
    add("backbone.patch_embed.norm.bias", C)
    if pretrain:
        add("backbone.patch_embed_2d.proj.weight", C, in_chans, patch[1], patch[2])
        add("backbone.patch_embed_2d.proj.bias", C)
        add("backbone.patch_embed_2d.norm.weight", C)
        add("backbone.patch_embed_2d.norm.bias", C)
        add("backbone.mask_token", 1, 1, C)
    rows = (2 * window[0] - 1) * (2 * window[1] - 1) * (2 * window[2] - 1)
    tokens = window[0] * window[1] * window[2]
    for i, (depth, nh) in enumerate(zip(depths, heads)):
        d = C * 2 ** i
        for j in range(depth):
            b = f"backbone.layers.{i}.blocks.{j}."
            add(b + "norm1.weight", d)
            add(b + "norm1.bias", d)
            add(b + "attn.relative_position_bias_table", rows, nh)
            add(b + "attn.relative_position_index", tokens, tokens, dtype=i64)
            add(b + "attn.qkv.weight", 3 * d, d)
            add(b + "attn.qkv.bias", 3 * d)
            add(b + "attn.proj.weight", d, d)
            add(b + "attn.proj.bias", d)
            add(b + "norm2.weight", d)
            add(b + "norm2.bias", d)
            add(b + "mlp.fc1.weight", 4 * d, d)
            add(b + "mlp.fc1.bias", 4 * d)
            add(b + "mlp.fc2.weight", d, 4 * d)
            add(b + "mlp.fc2.bias", d)
        if i < len(depths) - 1:
            add(f"backbone.layers.{i}.downsample.reduction.weight", 2 * d, 4 * d)
            add(f"backbone.layers.{i}.downsample.norm.weight", 4 * d)
            add(f"backbone.layers.{i}.downsample.norm.bias", 4 * d)
    F = C * 2 ** (len(depths) - 1)
    add("backbone.norm.weight", F)
    add("backbone.norm.bias", F)
    if not pretrain:
        add("cls_head.fc_cls.weight", classes, F)
        add("cls_head.fc_cls.bias", classes)
        return out
    add("backbone.lm_down.weight", F, F + F // 2)
    add("backbone.lm_down.bias", F)
    add("backbone.fpn.0.weight", F, F, 2, 2)
    add("backbone.fpn.0.bias", F)
    add("backbone.lm_down_st.0.weight", F, F + F // 2)
    add("backbone.lm_down_st.0.bias", F)
    add("backbone.fpn_s.0.weight", F, F, 1, 2, 2)
    add("backbone.fpn_s.0.bias", F)
    add("backbone.fpn_t.0.weight", F, F, 2, 1, 1)
    add("backbone.fpn_t.0.bias", F)
    add("cls_head.lm_head.weight", vocab, F)
    add("cls_head.lm_head.bias", vocab)
    for k, v in tiny_dalle_weights(n_hid=dalle_hid, vocab=vocab, n_blk=1, groups=2).items():
        add("cls_head.vae_encoder." + k, *v.shape)
    return out


def relative_position_index(window):
    """The official buffer (SwinTransformer3D's WindowAttention3D): pairwise offsets of a window's tokens."""
    coords = torch.stack(torch.meshgrid(*[torch.arange(w) for w in window], indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0).contiguous()
    rel[:, :, 0] += window[0] - 1
    rel[:, :, 1] += window[1] - 1
    rel[:, :, 2] += window[2] - 1
    rel[:, :, 0] *= (2 * window[1] - 1) * (2 * window[2] - 1)
    rel[:, :, 1] *= 2 * window[2] - 1
    return rel.sum(-1)


def swin3d_checkpoint(spec, window, seed=0, ema=False):
    """An mmcv checkpoint {"meta", "state_dict", "optimizer"} of random weights with the spec's names. With ema,
    the ema_* buffers mmcv's EMAHook registers on the recognizer (its own buffers, so first in the state dict),
    holding other values than the parameters (as after training: CheckpointHook saves before the hook's swap)."""
    g = torch.Generator().manual_seed(seed)
    sd = OD()
    for name, shape, dtype in spec:
        if dtype == torch.int64:
            sd[name] = relative_position_index(window)
        elif name.endswith("norm.weight") or name.endswith("norm1.weight") or name.endswith("norm2.weight"):
            sd[name] = 1 + 0.1 * torch.randn(shape, generator=g)
        else:
            sd[name] = 0.05 * torch.randn(shape, generator=g)
    if ema:
        buffers = OD((ema_name(k), v + 0.05 * torch.randn(v.shape, generator=g))
                     for k, v in sd.items() if v.is_floating_point())
        buffers.update(sd)
        sd = buffers
    meta = {"mmcv_version": "1.3.16", "epoch": 60, "iter": 100000, "time": "Sat Dec  4 12:00:00 2021",
            "config": "model = dict(type='Recognizer3D', backbone=dict(type='SwinTransformer3D'))",
            "CLASSES": None}
    optimizer = {"state": {}, "param_groups": [{"lr": 0.0, "weight_decay": 0.05, "params": [0, 1]}]}
    return {"meta": meta, "state_dict": sd, "optimizer": optimizer}


def ema_name(param_name):
    return "ema_" + param_name.replace(".", "_")


def _ints(text):
    return tuple(int(x) for x in text.split(","))


def main(argv):
    if len(argv) == 3 and argv[0] == "encoder-pkl":
        from safetensors.torch import load_file
        encoder_pkl(load_file(argv[1]), argv[2])
        return 0
    if argv[:1] == ["swin3d"]:
        import argparse
        ap = argparse.ArgumentParser(prog="checkpoint_fixtures.py swin3d")
        ap.add_argument("out")
        ap.add_argument("--embed-dim", type=int, default=8)
        ap.add_argument("--depths", type=_ints, default=(1, 1, 1, 1))
        ap.add_argument("--heads", type=_ints, default=(1, 1, 2, 2))
        ap.add_argument("--window", type=_ints, default=(2, 4, 4))
        ap.add_argument("--classes", type=int, default=5)
        ap.add_argument("--vocab", type=int, default=16)
        ap.add_argument("--pretrain", action="store_true")
        ap.add_argument("--ema", action="store_true")
        ap.add_argument("--seed", type=int, default=0)
        ap.add_argument("--drop", action="append", default=[])
        ap.add_argument("--add", action="append", default=[])
        a = ap.parse_args(argv[1:])
        spec = swin3d_spec(a.embed_dim, a.depths, a.heads, a.window, classes=a.classes, pretrain=a.pretrain,
                           vocab=a.vocab)
        ck = swin3d_checkpoint(spec, a.window, seed=a.seed, ema=a.ema)
        for k in a.drop:
            del ck["state_dict"][k]
        for k in a.add:
            ck["state_dict"][k] = torch.zeros(2)
        torch.save(ck, a.out)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

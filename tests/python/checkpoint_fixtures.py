"""Checkpoints for the converter tests, written with torch.save from real tensors and real nested objects.

The classes of the packages whose objects checkpoints carry (OpenAI's dall_e modules, mmcv's ConfigDict, yacs's
and fvcore's CfgNode, mmengine's HistoryBuffer) are defined here under those exact module names, so that pickle
writes the same globals as the originals do; none of those packages is installed or needed.

  * encoder_module(weights): a dall_e.encoder.Encoder (nn.Module: dall_e.utils.Conv2d, EncoderBlock, torch.nn
    Sequential, ReLU, MaxPool2d, Identity, torch.device attributes) holding the given blocks.* weights;
    encoder_pkl(weights, path) torch.saves it whole, as OpenAI's encoder.pkl is;
  * tiny_dalle_weights(...): random blocks.* tensors with the official names for a small encoder;
  * ConfigDict (mmcv), YacsCfgNode and FvcoreCfgNode (Swin 2D, PySlowFast), HistoryBuffer (mmengine): the
    metadata objects those checkpoints carry.

Command line (used by tests/test_convert.cpp, run with the Python of bevt's torch):
    checkpoint_fixtures.py encoder-pkl WEIGHTS.safetensors OUT.pkl
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


def main(argv):
    if len(argv) == 3 and argv[0] == "encoder-pkl":
        from safetensors.torch import load_file
        encoder_pkl(load_file(argv[1]), argv[2])
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

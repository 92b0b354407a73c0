# Import shims for running the official BEVT / Video Swin / DALL-E modules without installing mmcv, mmaction,
# timm, einops, attrs or requests. Only what the imports need and the benchmark workload does not exercise is
# faked (registries, checkpoint loading, loggers); the model code itself is the official files, loaded from the
# user's checkouts under their official module names so that their relative imports resolve.
import importlib.util
import logging
import math
import os
import sys
import types

import torch
import torch.nn as nn


def _module(name, **attrs):
    m = sys.modules.get(name)
    if m is None:
        m = types.ModuleType(name)
        m.__path__ = []  # importable as a package
        sys.modules[name] = m
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(_module(parent), child, m)
    for k, v in attrs.items():
        setattr(m, k, v)
    return m


def load_file(name, path):
    """Executes one official source file as module `name` (its package must already exist)."""
    parent, _, child = name.rpartition(".")
    if parent:
        _module(parent)
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    if parent:
        setattr(sys.modules[parent], child, mod)
    return mod


# --- attrs: the subset dall_e uses (@attr.s classes whose fields are attr.ib with default / validator) ------
class _Field:
    _counter = 0

    def __init__(self, default=None, validator=None, has_default=False):
        self.default, self.validator, self.has_default = default, validator, has_default
        _Field._counter += 1
        self.order = _Field._counter


_NOTHING = object()


def _ib(default=_NOTHING, validator=None):
    return _Field(None if default is _NOTHING else default, validator, default is not _NOTHING)


def _s(maybe_cls=None, **_kwargs):
    def wrap(cls):
        fields = []
        for klass in reversed(cls.__mro__):
            for k, v in list(vars(klass).items()):
                if isinstance(v, _Field) and all(k != f[0] for f in fields):
                    fields.append((k, v))
        for k, _ in fields:
            if k in vars(cls):
                delattr(cls, k)

        def __init__(self, *args, **kwargs):
            for i, (k, f) in enumerate(fields):
                if i < len(args):
                    v = args[i]
                elif k in kwargs:
                    v = kwargs[k]
                elif f.has_default:
                    v = f.default
                else:
                    raise TypeError(f"{cls.__name__}: missing {k}")
                if f.validator is not None and not f.validator(self, k, v):
                    raise ValueError(f"{cls.__name__}.{k} = {v!r} is invalid")
                object.__setattr__(self, k, v)
            self.__attrs_post_init__()

        cls.__init__ = __init__
        return cls

    return wrap(maybe_cls) if maybe_cls is not None else wrap


# --- einops.rearrange: only the pure axis permutations the official files use ('n c d h w -> n d h w c') ----
def _rearrange(x, pattern):
    lhs, rhs = [s.split() for s in pattern.split("->")]
    assert sorted(lhs) == sorted(rhs) and len(lhs) == x.dim(), pattern
    return x.permute(*[lhs.index(a) for a in rhs])


# --- timm.models.layers ---------------------------------------------------------------------------------
class _DropPath(nn.Module):
    def __init__(self, drop_prob=None):
        super().__init__()
        self.drop_prob = drop_prob or 0.0

    def forward(self, x):
        if self.drop_prob == 0.0 or not self.training:
            return x
        keep = 1 - self.drop_prob
        shape = (x.shape[0],) + (1,) * (x.ndim - 1)
        r = keep + torch.rand(shape, dtype=x.dtype, device=x.device)
        return x.div(keep) * r.floor_()


def _to_2tuple(x):
    return tuple(x) if isinstance(x, (list, tuple)) else (x, x)


def _trunc_normal_(t, mean=0.0, std=1.0, a=-2.0, b=2.0):
    return nn.init.trunc_normal_(t, mean, std, a, b)


def _trunc_normal_init(module, mean=0, std=1, a=-2, b=2, bias=0):
    nn.init.trunc_normal_(module.weight, mean, std, a, b)
    if getattr(module, "bias", None) is not None:
        nn.init.constant_(module.bias, bias)


# --- mm* registries and builders ---------------------------------------------------------------------------
class _Registry:
    def __init__(self, name):
        self.name, self.classes = name, {}

    def register_module(self, name=None, force=False, module=None):
        def add(cls):
            self.classes[cls.__name__] = cls
            return cls

        return add(module) if module is not None else add

    def build(self, cfg):
        cfg = dict(cfg)
        return self.classes[cfg.pop("type")](**cfg)


def install(bevt_repo, swin_repo, dalle_repo):
    """Installs the shims, then loads the official files; returns a namespace of the classes used."""
    _module("attr", s=_s, ib=_ib)
    _module("einops", rearrange=_rearrange)
    _module("requests")
    _module("timm.models.layers", DropPath=_DropPath, to_2tuple=_to_2tuple, trunc_normal_=_trunc_normal_)
    _module("mmcv.cnn", trunc_normal_init=_trunc_normal_init)
    _module("mmcv.runner", load_checkpoint=None, _load_checkpoint=None, load_state_dict=None,
            auto_fp16=lambda *a, **k: (lambda f: f))
    _module("mmaction.utils", get_root_logger=lambda *a, **k: logging.getLogger("official"))
    _module("mmaction.core", top_k_accuracy=None)
    regs = {n: _Registry(n) for n in ("BACKBONES", "HEADS", "RECOGNIZERS", "LOSSES", "NECKS", "DALL_E")}
    _module("mmaction.models.builder", **regs,
            build_backbone=regs["BACKBONES"].build, build_head=regs["HEADS"].build,
            build_loss=regs["LOSSES"].build, build_neck=regs["NECKS"].build)

    # DALL-E: the openai/DALL-E package's utils and encoder (its __init__ needs requests for downloads).
    dalle = _module("dall_e")
    dalle.__path__ = [os.path.join(dalle_repo, "dall_e")]
    load_file("dall_e.utils", os.path.join(dalle_repo, "dall_e", "utils.py"))
    enc = load_file("dall_e.encoder", os.path.join(dalle_repo, "dall_e", "encoder.py"))

    # BEVT's head reads encoder.pkl (a pickled Encoder) through load_model: here a randomly initialised
    # official Encoder (n_hid 256, vocabulary 8192); speed does not depend on the weights.
    _module("mmaction.models.dall_e", load_model=lambda path, device=None: enc.Encoder())

    m = os.path.join(bevt_repo, "mmaction", "models")
    load_file("mmaction.models.losses.base", os.path.join(m, "losses", "base.py"))
    load_file("mmaction.models.losses.cross_entropy_loss", os.path.join(m, "losses", "cross_entropy_loss.py"))
    bevt_bb = load_file("mmaction.models.backbones.swin_transformer_bevt",
                        os.path.join(m, "backbones", "swin_transformer_bevt.py"))
    load_file("mmaction.models.heads.base", os.path.join(m, "heads", "base.py"))
    load_file("mmaction.models.heads.bevt_multisource_head", os.path.join(m, "heads", "bevt_multisource_head.py"))
    load_file("mmaction.models.recognizers.base", os.path.join(m, "recognizers", "base.py"))
    rec = load_file("mmaction.models.recognizers.bevt_multisource",
                    os.path.join(m, "recognizers", "bevt_multisource.py"))
    swin = load_file("mmaction.models.backbones.swin_transformer",
                     os.path.join(swin_repo, "mmaction", "models", "backbones", "swin_transformer.py"))
    return types.SimpleNamespace(Encoder=enc.Encoder, BEVTMultiSource=rec.BEVTMultiSource,
                                 SwinTransformerBEVT=bevt_bb.SwinTransformerBEVT,
                                 SwinTransformer3D=swin.SwinTransformer3D)

"""tools/convert_checkpoint.py, tools/convert_dalle.py and tools/checkpoint_io.py, run with the Python of bevt's
torch (which holds numpy and safetensors too).

Run: ctest -R convert.python, or <venv>/bin/python tests/python/test_checkpoint_tools.py. ctest sets
BEVT_CONVERT (build/bin/bevt-convert, for the real command lines) and BEVT_PLAIN_PYTHON (a Python without torch,
for the missing-module messages); without them those cases run the tools directly or are skipped.
The independent checks (LibTorch's own deserializer reads the written .pth, the converters read what LibTorch's
serializer writes, converted checkpoints run through bevt-run / bevt-forward) are in tests/test_convert.cpp.
"""
import argparse
import collections
import contextlib
import io
import json
import os
import pickle
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest
import zipfile

import numpy as np
import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
TOOLS = os.path.join(ROOT, "tools")
sys.path.insert(0, TOOLS)
sys.path.insert(0, HERE)
import checkpoint_fixtures as fx  # noqa: E402
import checkpoint_io as cio  # noqa: E402
import convert_checkpoint  # noqa: E402
import convert_dalle  # noqa: E402

from safetensors.torch import load_file, save_file  # noqa: E402

TOOL_MODULES = {"convert_checkpoint.py": convert_checkpoint, "convert_dalle.py": convert_dalle}
OD = collections.OrderedDict
KEYS_DALLE = os.path.join(ROOT, "tests", "reference", "keys", "keys_dalle_encoder.txt")


def run_tool(tool, *args):
    """(exit status, stdout, stderr) of the tool's main(), in this process (a new Python that imports torch costs
    seconds on a loaded machine); ProcessExit and Safety check the real command lines."""
    mod = TOOL_MODULES[tool]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = mod.main([str(a) for a in args])
        except SystemExit as e:
            rc = e.code
    return rc, out.getvalue(), err.getvalue()


def command(tool):
    """The command line of a tool: build/bin/bevt-convert [dalle] under ctest, else this Python on the script."""
    launcher = os.environ.get("BEVT_CONVERT")
    if launcher:
        return [launcher] + (["dalle"] if tool == "convert_dalle.py" else [])
    return [sys.executable, os.path.join(TOOLS, tool)]


def run_process(tool, *args, env=None):
    p = subprocess.run(command(tool) + list(map(str, args)), capture_output=True, text=True, env=env)
    return p.returncode, p.stdout, p.stderr


def read(path):
    with open(path, "rb") as f:
        return f.read()


def every_dtype(seed=0):
    """A state dict with every dtype bevt's safetensors hold, a 0-d tensor, an empty tensor and awkward values."""
    g = torch.Generator().manual_seed(seed)
    sd = OD()
    sd["backbone.patch_embed.proj.weight"] = torch.randn((4, 3, 2, 2, 2), generator=g)
    sd["backbone.norm.bias"] = torch.tensor([0.0, -0.0, float("inf"), float("-inf"), float("nan"), 1e-45])
    sd["f64"] = torch.randn(5, generator=g, dtype=torch.float64)
    sd["f16"] = torch.randn((3, 2), generator=g).half()
    sd["bf16"] = torch.randn((2, 3), generator=g).bfloat16()
    sd["backbone.layers.0.blocks.0.attn.relative_position_index"] = torch.randint(
        -2 ** 40, 2 ** 40, (7, 7), generator=g, dtype=torch.int64)
    sd["i32"] = torch.randint(-2 ** 31, 2 ** 31 - 1, (4,), generator=g, dtype=torch.int32)
    sd["i16"] = torch.tensor([-32768, 32767, 0], dtype=torch.int16)
    sd["i8"] = torch.tensor([-128, 127], dtype=torch.int8)
    sd["u8"] = torch.tensor([0, 255, 7], dtype=torch.uint8)
    sd["mask"] = torch.tensor([[True, False], [False, True]])
    sd["scalar"] = torch.tensor(2.5)
    sd["empty"] = torch.zeros((0, 3))
    sd["cls_head.fc_cls.weight"] = torch.randn((10, 4), generator=g)
    return sd


def mmcv_checkpoint(sd):
    """{"meta", "state_dict", "optimizer"} as mmcv saves it: meta with numpy scalars, a ConfigDict, tuples."""
    first = next(iter(sd.values()))
    meta = {"mmcv_version": "1.3.16", "epoch": 30, "iter": 123456, "time": "Fri Apr  8 12:00:00 2022",
            "config": "model = dict(type='Recognizer3D', ...)", "seed": 0, "exp_name": "bevt.py",
            "hook_msgs": {"last_ckpt": "/out/epoch_30.pth", "best_score": np.float64(0.8125),
                          "best_epoch": np.int64(28)},
            "cfg": fx.ConfigDict(model=fx.ConfigDict(type="Recognizer3D"), lr=5e-4),
            "env": {"shapes": (1, 2, 3), "flags": frozenset({"a"}), "classes": ["a", "b"]}}
    optimizer = {"state": {0: {"step": torch.tensor(10.0), "exp_avg": torch.ones(first.shape)}},
                 "param_groups": [{"lr": 5e-4, "betas": (0.9, 0.999), "weight_decay": 0.05, "params": [0]}]}
    return {"meta": meta, "state_dict": OD(sd), "optimizer": optimizer}


class Evil:
    """Pickles as a call of `fn(*args)`: what a malicious checkpoint carries."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


class Tmp(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="bevt_convert_")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def p(self, name):
        return os.path.join(self.dir, name)

    def assertSame(self, a, b):
        self.assertEqual(sorted(a), sorted(b))
        for k in a:
            self.assertEqual(a[k].dtype, b[k].dtype, k)
            self.assertEqual(a[k].shape, b[k].shape, k)
            self.assertTrue(torch.equal(a[k].view(torch.uint8) if a[k].dim() else a[k], b[k].view(torch.uint8)
                                        if b[k].dim() else b[k]), k)  # bitwise: NaN == NaN, -0.0 != 0.0

    def assertOneLineError(self, rc, out, err, *words):
        self.assertEqual(rc, 2, out + err)
        self.assertEqual(len(err.strip().splitlines()), 1, err)
        self.assertNotIn("Traceback", err)
        for w in words:
            self.assertIn(w, err)

    def assertNothingWritten(self, *names):
        for n in names:
            self.assertFalse(os.path.exists(self.p(n)), f"{n} was written")
        self.assertEqual([n for n in os.listdir(self.dir) if ".tmp" in n], [], "a temporary file was left")


class RoundTrip(Tmp):
    def test_pth_safetensors_pth_is_identical(self):
        sd = every_dtype()
        torch.save(mmcv_checkpoint(sd), self.p("a.pth"))
        rc, out, err = run_tool("convert_checkpoint.py", self.p("a.pth"), self.p("a.safetensors"))
        self.assertEqual(rc, 0, err)
        self.assertIn("torch.save zip format, mmcv checkpoint", out)
        self.assertIn(f"{len(sd)} tensors", out)
        st, meta = cio.load_safetensors(self.p("a.safetensors"))
        self.assertSame(sd, st)
        self.assertEqual(meta["format"], "pt")
        for layout, pick in (("mmcv", lambda o: o["state_dict"]), ("plain", lambda o: o),
                             ("model_state", lambda o: o["model_state"]), ("model", lambda o: o["model"])):
            out_pth = self.p(f"b_{layout}.pth")
            rc, out, err = run_tool("convert_checkpoint.py", self.p("a.safetensors"), out_pth, "--layout", layout)
            self.assertEqual(rc, 0, err)
            back = torch.load(out_pth, weights_only=True)  # torch's own loader, nothing allow-listed
            self.assertSame(sd, pick(back))
            if layout == "mmcv":
                self.assertEqual(back["meta"]["source"], "a.safetensors")
            with zipfile.ZipFile(out_pth) as z:
                self.assertIn("archive/data.pkl", z.namelist())

    def test_safetensors_are_read_independently(self):
        # Parse the written file by hand (the format, not the package): names, dtypes, shapes, bytes, no gaps.
        sd = every_dtype(1)
        cio.save_safetensors(self.p("x.safetensors"), sd, {"k": "v"})
        raw = read(self.p("x.safetensors"))
        (n,) = struct.unpack("<Q", raw[:8])
        self.assertEqual((8 + n) % 8, 0)
        header = json.loads(raw[8:8 + n])
        self.assertEqual(header.pop("__metadata__"), {"k": "v"})
        self.assertEqual(sorted(header), sorted(sd))
        spans = sorted(tuple(e["data_offsets"]) for e in header.values())
        self.assertEqual(spans[0][0], 0)
        self.assertEqual(spans[-1][1], len(raw) - 8 - n)
        for (b0, e0), (b1, e1) in zip(spans, spans[1:]):
            self.assertEqual(e0, b1)
        for k, e in header.items():
            b, e_ = e["data_offsets"]
            t = sd[k]
            self.assertEqual(e["dtype"], cio.dtype_name(t))
            self.assertEqual(e["shape"], list(t.shape))
            self.assertEqual(raw[8 + n + b:8 + n + e_], t.contiguous().view(-1).view(torch.uint8).numpy().tobytes(), k)
            self.assertEqual(b % t.element_size(), 0, f"{k} is not aligned")

    def test_header_length_starting_with_0x80(self):
        # A safetensors file whose first byte is 0x80, the byte that starts a legacy torch.save pickle.
        for pad in range(0, 256):
            cio.save_safetensors(self.p("h.safetensors"), {"w": torch.ones(2)}, {"pad": "x" * pad})
            if read(self.p("h.safetensors"))[0] == 0x80:
                break
        self.assertEqual(read(self.p("h.safetensors"))[0], 0x80)
        self.assertEqual(cio.sniff(self.p("h.safetensors")), "safetensors")
        rc, out, err = run_tool("convert_checkpoint.py", self.p("h.safetensors"), self.p("h.pth"))
        self.assertEqual(rc, 0, err)

    def test_views_and_shared_storage(self):
        # torch.save keeps views on one storage; each becomes its own contiguous tensor.
        base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
        sd = OD(base=base, transposed=base.t(), columns=base[:, 2:5], every_other=base[::2, 1::2], tied=base)
        torch.save({"state_dict": sd}, self.p("v.pth"))
        rc, out, err = run_tool("convert_checkpoint.py", self.p("v.pth"), self.p("v.safetensors"))
        self.assertEqual(rc, 0, err)
        st = load_file(self.p("v.safetensors"))
        for k, v in sd.items():
            self.assertTrue(torch.equal(st[k], v.contiguous()), k)

    def test_legacy_format(self):
        sd = OD(w=torch.linspace(0, 1, 6).reshape(2, 3), h=torch.ones(4, dtype=torch.float16),
                i=torch.arange(10)[3:7])
        torch.save({"state_dict": sd, "epoch": 3, "meta": {"best": np.float64(0.5)}}, self.p("old.pth"),
                   _use_new_zipfile_serialization=False)
        self.assertEqual(cio.sniff(self.p("old.pth")), "legacy")
        rc, out, err = run_tool("convert_checkpoint.py", self.p("old.pth"), self.p("old.safetensors"))
        self.assertEqual(rc, 0, err)
        self.assertIn("legacy torch.save format", out)
        self.assertSame(OD((k, v.contiguous()) for k, v in sd.items()), load_file(self.p("old.safetensors")))


class Layouts(Tmp):
    def convert(self, obj, *flags, name="x", legacy=False):
        torch.save(obj, self.p(name + ".pth"), _use_new_zipfile_serialization=not legacy)
        rc, out, err = run_tool("convert_checkpoint.py", self.p(name + ".pth"), self.p(name + ".safetensors"), *flags)
        self.assertEqual(rc, 0, err)
        return cio.load_safetensors(self.p(name + ".safetensors"))[0], out

    def t(self, *shape, v=1.0):
        return torch.full(shape, v)

    def test_timesformer_model_state_keeps_official_names(self):
        sd = OD([("model.cls_token", self.t(1, 1, 4)), ("model.blocks.0.attn.qkv.weight", self.t(12, 4)),
                 ("model.head.weight", self.t(400, 4))])
        ck = {"epoch": 15, "model_state": sd, "optimizer_state": {"state": {}, "param_groups": []},
              "cfg": fx.FvcoreCfgNode({"TRAIN": fx.FvcoreCfgNode({"BATCH_SIZE": 8})})}
        st, out = self.convert(ck)
        self.assertIn("PySlowFast", out)
        self.assertEqual(sorted(st), sorted(sd))
        st, _ = self.convert(ck, "--strip", "model.", name="y")
        self.assertEqual(sorted(st), ["blocks.0.attn.qkv.weight", "cls_token", "head.weight"])

    def test_swin2d_model_entry_yacs_config_and_module_prefix(self):
        sd = OD([("module.patch_embed.proj.weight", self.t(2, 3, 4, 4)),
                 ("module.layers.0.blocks.0.attn.qkv.weight", self.t(6, 2))])
        ck = {"model": sd, "optimizer": {}, "lr_scheduler": {}, "max_accuracy": 83.5, "epoch": 299,
              "config": fx.YacsCfgNode({"MODEL": fx.YacsCfgNode({"TYPE": "swin"})})}
        st, out = self.convert(ck)
        self.assertIn("'model'", out)
        self.assertIn("module.", out)
        self.assertEqual(sorted(st), ["layers.0.blocks.0.attn.qkv.weight", "patch_embed.proj.weight"])
        st, _ = self.convert({"model": sd}, "--keep-module-prefix", name="y")
        self.assertEqual(sorted(st), sorted(sd))

    def test_timm_checkpoint_with_argparse_namespace(self):
        sd = OD([("patch_embed.proj.weight", self.t(2, 3, 4, 4)), ("head.weight", self.t(10, 2))])
        ck = {"epoch": 299, "arch": "deit_tiny", "state_dict": sd, "optimizer": {"state": {}},
              "version": 2, "args": argparse.Namespace(model="deit_tiny", lr=5e-4, smoothing=0.1),
              "metric": 72.2, "state_dict_ema": OD((k, v * 2) for k, v in sd.items())}
        st, out = self.convert(ck)
        self.assertEqual(sorted(st), sorted(sd))
        st, _ = self.convert(ck, "--key", "state_dict_ema", name="e")
        self.assertTrue(torch.equal(st["head.weight"], sd["head.weight"] * 2))

    def test_mmengine_checkpoint_with_history_buffers(self):
        sd = OD([("backbone.cls_token", self.t(1, 1, 4)), ("cls_head.fc_cls.weight", self.t(3, 4))])
        ck = {"meta": {"epoch": 30, "iter": 900, "mmengine_version": "0.10.3", "dataset_meta": {"classes": ("a",)}},
              "state_dict": sd, "optimizer": {"state": {}, "param_groups": []},
              "message_hub": {"log_scalars": {"train/loss": fx.HistoryBuffer([0.5, 0.25])},
                              "runtime_info": {"epoch": 30}},
              "param_schedulers": [{"base_values": [5e-4], "last_step": 900}]}
        st, out = self.convert(ck)
        self.assertIn("mmcv checkpoint", out)
        self.assertEqual(sorted(st), sorted(sd))

    def test_plain_state_dict_and_pickled_torch_module(self):
        sd = OD([("a.weight", self.t(2)), ("b.bias", self.t(3))])
        st, out = self.convert(sd)
        self.assertIn("plain state dict", out)
        self.assertEqual(sorted(st), sorted(sd))
        model = nn.Sequential(OD(fc=nn.Linear(3, 4), bn=nn.BatchNorm1d(4), act=nn.GELU()))
        model.register_buffer("scratch", torch.zeros(2), persistent=False)
        st, out = self.convert(model, name="m")
        self.assertIn("pickled module (torch.nn.modules.container.Sequential)", out)
        self.assertSame(model.state_dict(), st)
        self.assertNotIn("scratch", st)
        st, out = self.convert({"model": model, "epoch": 3}, name="n")
        self.assertSame(model.state_dict(), st)
        # torch's legacy format stores a module's class with its source code, which the weights-only loader refuses
        torch.save(model, self.p("old.pth"), _use_new_zipfile_serialization=False)
        rc, out, err = run_tool("convert_checkpoint.py", self.p("old.pth"), self.p("old.safetensors"))
        self.assertOneLineError(rc, out, err, "old.pth", "legacy format", "weights_only=False")
        self.assertNothingWritten("old.safetensors")

    def test_pickled_dalle_module_without_dall_e(self):
        w = fx.tiny_dalle_weights(n_hid=4, vocab=8, n_blk=1, groups=2)
        st, out = self.convert(fx.encoder_module(w), name="m")
        self.assertIn("pickled module (dall_e.encoder.Encoder)", out)
        self.assertSame(w, st)

    def test_bevt_pretrain_selection(self):
        sd = OD([("backbone.patch_embed.proj.weight", self.t(2, 3, 2, 4, 4)), ("backbone.mask_token", self.t(1, 1, 2)),
                 ("cls_head.lm_head.weight", self.t(16, 2)),
                 ("cls_head.vae_encoder.blocks.input.w", self.t(4, 3, 7, 7))])
        st, _ = self.convert(mmcv_checkpoint(sd), "--only", "backbone.", "--strip", "backbone.")
        self.assertEqual(sorted(st), ["mask_token", "patch_embed.proj.weight"])
        st, _ = self.convert(mmcv_checkpoint(sd), "--exclude", "vae_encoder", "--add-prefix", "x.", name="y")
        self.assertEqual(sorted(st), ["x.backbone.mask_token", "x.backbone.patch_embed.proj.weight",
                                      "x.cls_head.lm_head.weight"])

    def test_mmcv_ema_buffers(self):
        sd = OD([("backbone.norm.weight", self.t(4, v=1.0)), ("cls_head.fc_cls.weight", self.t(3, 4, v=2.0)),
                 ("ema_backbone_norm_weight", self.t(4, v=5.0)), ("ema_cls_head_fc_cls_weight", self.t(3, 4, v=6.0))])
        st, out = self.convert(mmcv_checkpoint(sd), "--ema", "drop", name="d")
        self.assertEqual(sorted(st), ["backbone.norm.weight", "cls_head.fc_cls.weight"])
        self.assertEqual(st["backbone.norm.weight"][0].item(), 1.0)
        self.assertIn("dropped 2 mmcv EMA buffers", out)
        st, out = self.convert(mmcv_checkpoint(sd), "--ema", "use", name="u")
        self.assertIn("took 2 parameters from their mmcv EMA buffers", out)
        self.assertEqual(sorted(st), ["backbone.norm.weight", "cls_head.fc_cls.weight"])
        self.assertEqual(st["backbone.norm.weight"][0].item(), 5.0)
        self.assertEqual(st["cls_head.fc_cls.weight"][0, 0].item(), 6.0)
        st, out = self.convert(mmcv_checkpoint(sd), name="k")  # the default: kept, the loader decides
        self.assertEqual(sorted(st), sorted(sd))
        self.assertEqual(st["ema_backbone_norm_weight"][0].item(), 5.0)
        self.assertIn("kept 2 mmcv EMA buffers", out)

    def test_official_video_swin_layouts(self):
        """The fixture generator's names, shapes and order are the model zoo's (tests/reference/keys), so the
        C++ tests that convert and load its files test official layouts."""
        for ref, kw in (("keys_video_swin_tiny_k400.txt", {}),
                        ("keys_video_swin_base_k400.txt", dict(embed_dim=128, heads=(4, 8, 16, 32),
                                                               depths=(2, 2, 18, 2)))):
            with open(os.path.join(ROOT, "tests", "reference", "keys", ref)) as f:
                want = [tuple(line.split(" ", 1)) for line in f.read().splitlines() if not line.startswith("#")]
            got = [(n, "[" + ", ".join(map(str, s)) + "]") for n, s, _ in fx.swin3d_spec(**kw)]
            self.assertEqual(got, want, ref)
        pre = {n: s for n, s, _ in fx.swin3d_spec(pretrain=True)}
        self.assertEqual(pre["backbone.mask_token"], (1, 1, 96))
        self.assertEqual(pre["backbone.fpn_t.0.weight"], (768, 768, 2, 1, 1))
        self.assertNotIn("cls_head.fc_cls.weight", pre)
        ck = fx.swin3d_checkpoint(fx.swin3d_spec(embed_dim=8, heads=(1, 1, 2, 2), depths=(1, 1, 1, 1),
                                                 window=(2, 4, 4), classes=5), (2, 4, 4), ema=True)
        sd = ck["state_dict"]
        ema = [k for k in sd if k.startswith("ema_")]
        params = [k for k in sd if not k.startswith("ema_") and sd[k].is_floating_point()]
        self.assertEqual(ema, [fx.ema_name(k) for k in params])  # first: the recognizer's own buffers
        self.assertEqual(list(sd)[:len(ema)], ema)
        self.assertFalse(any("relative_position_index" in k for k in ema))
        self.assertFalse(torch.equal(sd["ema_backbone_norm_weight"], sd["backbone.norm.weight"]))

    def test_key_dtype_and_list(self):
        ck = {"state_dict": OD(a=self.t(2)), "model_ema": OD(a=torch.tensor([1.00390625, 3.0]), i=torch.arange(3))}
        st, _ = self.convert(ck, "--key", "model_ema", "--dtype", "bfloat16")
        self.assertEqual(st["a"].dtype, torch.bfloat16)
        # 1.00390625 lies halfway between bfloat16 1.0 and 1.0078125: ties round to even
        self.assertEqual(st["a"].float().tolist(), [1.0, 3.0])
        self.assertEqual(st["i"].dtype, torch.int64)
        rc, out, err = run_tool("convert_checkpoint.py", self.p("x.pth"), "--list", "--key", "model_ema")
        self.assertEqual(rc, 0, err)
        self.assertIn("a F32 [2]", out)
        self.assertIn("i I64 [3]", out)


class Dalle(Tmp):
    def check_encoder_pkl(self, legacy):
        w = fx.tiny_dalle_weights(n_hid=8, vocab=16, n_blk=2, groups=4)
        fx.encoder_pkl(w, self.p("encoder.pkl"), legacy=legacy)
        self.assertNotIn("dall_e", [m.split(".")[0] for m in sys.modules if m.startswith("dall_e") and getattr(
            sys.modules[m], "__file__", None)], "no real dall_e package is imported")
        rc, out, err = run_tool("convert_dalle.py", self.p("encoder.pkl"), self.p("enc.safetensors"))
        self.assertEqual(rc, 0, err)
        self.assertIn("pickled module (dall_e.encoder.Encoder)", out)
        self.assertIn("n_hid = 8", out)
        self.assertIn("vocab_size = 16", out)
        st, meta = cio.load_safetensors(self.p("enc.safetensors"))
        with open(KEYS_DALLE) as f:
            want = [line.split()[0] for line in f if line.strip() and not line.startswith("#")]
        self.assertEqual(sorted(st), sorted(want), "the official encoder's 74 names (OpenAI's Encoder, 2 blocks)")
        self.assertSame(OD((k, w[k]) for k in st), st)
        self.assertEqual((meta["n_hid"], meta["vocab_size"], meta["n_blk_per_group"]), ("8", "16", "2"))

    def test_encoder_pkl_to_official_names(self):
        self.check_encoder_pkl(legacy=False)

    def test_encoder_pkl_in_the_legacy_format_is_refused(self):
        fx.encoder_pkl(fx.tiny_dalle_weights(n_hid=4, vocab=8, n_blk=1), self.p("encoder.pkl"), legacy=True)
        rc, out, err = run_tool("convert_dalle.py", self.p("encoder.pkl"), self.p("enc.safetensors"))
        self.assertOneLineError(rc, out, err, "encoder.pkl", "legacy format")
        self.assertNothingWritten("enc.safetensors")

    def test_bevt_checkpoint_and_half_precision(self):
        w = fx.tiny_dalle_weights(n_hid=4, vocab=8, n_blk=1, groups=4, seed=3)
        sd = OD([("backbone.norm.weight", torch.ones(4))])
        sd.update((f"cls_head.vae_encoder.{k}", v.half()) for k, v in w.items())
        torch.save(mmcv_checkpoint(sd), self.p("bevt.pth"))
        rc, out, err = run_tool("convert_dalle.py", self.p("bevt.pth"), self.p("enc.safetensors"))
        self.assertEqual(rc, 0, err)
        st = load_file(self.p("enc.safetensors"))
        self.assertEqual(sorted(st), sorted(w))
        for k in w:
            self.assertEqual(st[k].dtype, torch.float32)
            self.assertTrue(torch.equal(st[k], w[k].half().float()), k)

    def test_errors(self):
        rc, out, err = run_tool("convert_dalle.py", self.p("missing.pkl"), self.p("o.safetensors"))
        self.assertOneLineError(rc, out, err, "missing.pkl", "no such file")
        torch.save({"state_dict": OD(x=torch.ones(1))}, self.p("other.pth"))
        rc, out, err = run_tool("convert_dalle.py", self.p("other.pth"), self.p("o.safetensors"))
        self.assertOneLineError(rc, out, err, "other.pth", "no DALL-E encoder weights")
        w = fx.tiny_dalle_weights(n_hid=4, vocab=8, n_blk=1, groups=2)
        w["blocks.group_2.block_1.extra.w"] = w["blocks.input.w"]
        torch.save(w, self.p("odd.pth"))
        rc, out, err = run_tool("convert_dalle.py", self.p("odd.pth"), self.p("o.safetensors"))
        self.assertOneLineError(rc, out, err, "blocks.group_2.block_1.extra.w")
        self.assertNothingWritten("o.safetensors")


class Safety(Tmp):
    """Pickles that would run code are refused: one line, exit status 2, nothing runs, nothing is written."""

    def evil_files(self, marker):
        cmd = f"touch {marker}"
        sd = OD(w=torch.ones(2))
        calls = {"os_system": Evil(os.system, cmd), "exec": Evil(exec, f"open({marker!r}, 'w')"),
                 "eval": Evil(eval, f"open({marker!r}, 'w')"), "subprocess": Evil(subprocess.call, ["touch", marker]),
                 "import": Evil(__import__, "os"), "pickle_loads": Evil(pickle.loads, pickle.dumps(1))}
        files = {}
        for name, evil in calls.items():
            files[f"meta_{name}.pth"] = {"state_dict": sd, "meta": {"x": evil}}
        files["in_state_dict.pth"] = {"state_dict": OD(w=torch.ones(2), b=Evil(os.system, cmd))}
        files["top_level.pth"] = Evil(os.system, cmd)
        for name, obj in files.items():
            torch.save(obj, self.p(name))
        torch.save({"state_dict": sd, "meta": Evil(os.system, cmd)}, self.p("legacy.pth"),
                   _use_new_zipfile_serialization=False)
        # Hand-written pickles inside a torch.save zip: protocol 4's STACK_GLOBAL and protocol 0's GLOBAL + INST.
        p4 = pickle.dumps(Evil(os.system, cmd), protocol=4)
        p0 = b"(dp0\nVa\ncos\nsystem\n(V" + cmd.encode() + b"\ntRs."
        for name, pkl in (("protocol4.pth", p4), ("protocol0.pth", p0)):
            with zipfile.ZipFile(self.p(name), "w") as z:
                z.writestr("archive/data.pkl", pkl)
                z.writestr("archive/version", "3\n")
        return sorted(files) + ["legacy.pth", "protocol4.pth", "protocol0.pth"]

    def test_malicious_pickles_are_refused(self):
        marker = self.p("pwned")
        for name in self.evil_files(marker):
            for tool in ("convert_checkpoint.py", "convert_dalle.py"):
                with self.subTest(file=name, tool=tool):
                    rc, out, err = run_tool(tool, self.p(name), self.p("out.safetensors"))
                    self.assertOneLineError(rc, out, err, name, "refused")
                    self.assertFalse(os.path.exists(marker), "the pickle ran code")
                    self.assertNothingWritten("out.safetensors")
        rc, out, err = run_tool("convert_checkpoint.py", self.p("meta_os_system.pth"), self.p("o.safetensors"))
        self.assertIn("posix.system", err)
        rc, out, err = run_tool("convert_checkpoint.py", self.p("meta_subprocess.pth"), self.p("o.safetensors"))
        self.assertIn(".call", err)  # subprocess.call, which protocol 2 spells commands.call

    def test_malicious_pickle_through_the_command_line(self):
        # The demonstration asked for: bevt-convert on a .pth whose pickle calls os.system refuses it.
        marker = self.p("pwned")
        self.evil_files(marker)
        for name in ("meta_os_system.pth", "legacy.pth", "protocol4.pth"):
            rc, out, err = run_process("convert_checkpoint.py", self.p(name), self.p("out.safetensors"))
            self.assertOneLineError(rc, out, err, name, "refused")
            self.assertFalse(os.path.exists(marker), "the pickle ran code")
            self.assertNothingWritten("out.safetensors")
        rc, out, err = run_process("convert_dalle.py", self.p("meta_os_system.pth"), self.p("out.safetensors"))
        self.assertOneLineError(rc, out, err, "refused")
        self.assertFalse(os.path.exists(marker))
        self.assertNothingWritten("out.safetensors")

    def test_unknown_classes_are_refused_by_name(self):
        Net = fx._register("mymodels.net", type("Net", (nn.Module,), {}))
        net = Net()
        net.fc = nn.Linear(2, 2)
        torch.save(net, self.p("net.pth"))
        rc, out, err = run_tool("convert_checkpoint.py", self.p("net.pth"), self.p("net.safetensors"))
        self.assertOneLineError(rc, out, err, "net.pth", "refused", "mymodels.net.Net", "weights_only=False")
        self.assertNothingWritten("net.safetensors")

    def test_allow_listed_names_stay_inert(self):
        # A pickle that calls an allow-listed stand-in (dall_e's Encoder) with a command gets a record, no call.
        marker = self.p("pwned")
        stand_in = fx._register("dall_e.encoder", type("Encoder", (), {"__reduce__": lambda self: (
            type(self), (f"touch {marker}",))}))
        try:
            torch.save({"state_dict": OD(w=torch.ones(1)), "meta": stand_in()}, self.p("odd.pth"))
        finally:
            fx._register("dall_e.encoder", fx.Encoder)
        obj = cio.load_pth(self.p("odd.pth"))
        self.assertEqual(obj["meta"].pickled_name, "dall_e.encoder.Encoder")
        self.assertEqual(obj["meta"].pickled_args, (f"touch {marker}",))
        self.assertFalse(os.path.exists(marker))


class MissingModules(Tmp):
    """Without torch (or safetensors, or numpy where the file needs it): one line naming the setup command."""

    def plain_python(self):
        py = os.environ.get("BEVT_PLAIN_PYTHON", "/usr/bin/python3")
        if not os.path.exists(py):
            self.skipTest(f"{py} does not exist")
        if subprocess.run([py, "-c", "import torch"], capture_output=True).returncode == 0:
            self.skipTest(f"{py} has torch")
        return py

    def test_python_without_torch(self):
        py = self.plain_python()
        torch.save({"state_dict": OD(w=torch.ones(3))}, self.p("a.pth"))
        for tool in ("convert_checkpoint.py", "convert_dalle.py"):
            p = subprocess.run([py, os.path.join(TOOLS, tool), self.p("a.pth"), self.p("a.safetensors")],
                               capture_output=True, text=True)
            self.assertOneLineError(p.returncode, p.stdout, p.stderr, tool[:-3] + ": needs torch",
                                    f"not found in {py}", "bash scripts/setup.sh", "build/bin/bevt-convert")
            self.assertNothingWritten("a.safetensors")

    def hide(self, module):
        """An environment whose Python path hides `module` (a stand-in that fails to import, as a missing one)."""
        d = self.p("hide_" + module)
        os.makedirs(os.path.join(d, module))
        with open(os.path.join(d, module, "__init__.py"), "w") as f:
            f.write(f"raise ModuleNotFoundError(\"No module named '{module}'\", name={module!r})\n")
        return dict(os.environ, PYTHONPATH=d)

    def test_python_without_safetensors(self):
        torch.save({"state_dict": OD(w=torch.ones(3))}, self.p("a.pth"))
        p = subprocess.run([sys.executable, os.path.join(TOOLS, "convert_checkpoint.py"), self.p("a.pth"),
                            self.p("a.safetensors")], capture_output=True, text=True, env=self.hide("safetensors"))
        self.assertOneLineError(p.returncode, p.stdout, p.stderr, "needs the safetensors package", "scripts/setup.sh")
        self.assertNothingWritten("a.safetensors")

    def test_numpy_in_metadata_without_numpy(self):
        torch.save(mmcv_checkpoint(OD(w=torch.ones(3))), self.p("a.pth"))
        p = subprocess.run([sys.executable, os.path.join(TOOLS, "convert_checkpoint.py"), self.p("a.pth"),
                            self.p("a.safetensors")], capture_output=True, text=True, env=self.hide("numpy"))
        self.assertOneLineError(p.returncode, p.stdout, p.stderr, "a.pth", "numpy", "scripts/setup.sh")
        self.assertNothingWritten("a.safetensors")


class ProcessExit(Tmp):
    def test_command_lines_exit_0_and_2(self):
        torch.save({"state_dict": OD(w=torch.ones(3))}, self.p("a.pth"))
        rc, out, err = run_process("convert_checkpoint.py", self.p("a.pth"), self.p("a.safetensors"))
        self.assertEqual(rc, 0, err)
        self.assertIn("wrote", out)
        self.assertEqual(err, "")
        rc, out, err = run_process("convert_checkpoint.py", self.p("missing.pth"), self.p("b.safetensors"))
        self.assertOneLineError(rc, out, err, "missing.pth")
        rc, out, err = run_process("convert_dalle.py", self.p("a.pth"), self.p("c.safetensors"))
        self.assertOneLineError(rc, out, err, "no DALL-E encoder weights")
        rc, out, err = run_process("convert_checkpoint.py", "--help")
        self.assertEqual(rc, 0)
        self.assertIn("--layout", out)
        self.assertIn("bevt-convert dalle", out)


class Errors(Tmp):
    def check(self, src, *words, dst="out.safetensors", extra=()):
        rc, out, err = run_tool("convert_checkpoint.py", src, self.p(dst), *extra)
        self.assertOneLineError(rc, out, err, "convert_checkpoint:", *words)
        self.assertNothingWritten(dst)
        return err

    def test_bad_inputs(self):
        self.check(self.p("missing.pth"), "missing.pth", "no such file")
        with open(self.p("notes.txt"), "w") as f:
            f.write("not a checkpoint\n" * 10)
        self.check(self.p("notes.txt"), "notes.txt", "not a PyTorch checkpoint")
        with zipfile.ZipFile(self.p("other.zip"), "w") as z:
            z.writestr("readme.txt", "hello")
        self.check(self.p("other.zip"), "other.zip", "data.pkl")
        torch.jit.save(torch.jit.script(nn.Linear(2, 2)), self.p("script.pt"))
        self.check(self.p("script.pt"), "TorchScript")
        with open(self.p("plain.pkl"), "wb") as f:
            pickle.dump({"a": 1}, f, protocol=2)
        self.check(self.p("plain.pkl"), "plain.pkl", "not a PyTorch checkpoint")
        torch.save({"foo": {"bar": 1}, "epoch": 3}, self.p("unknown.pth"))
        self.check(self.p("unknown.pth"), "unknown.pth", "unknown checkpoint layout", "'foo'")
        torch.save({"state_dict": {"a": torch.ones(2), "b": 3}}, self.p("mixed.pth"))
        self.check(self.p("mixed.pth"), "mixed.pth", "'b'", "not a tensor")
        torch.save({"state_dict": {"a": torch.ones(2)}}, self.p("ok.pth"))
        self.check(self.p("ok.pth"), "no entry 'ema'", extra=("--key", "ema"))
        self.check(self.p("ok.pth"), "no tensor name starts with head.", extra=("--only", "head."))
        self.check(self.p("ok.pth"), ".safetensors", dst="out.pth")
        self.check(self.p("ok.pth"), "does not exist", dst="no/such/dir/out.safetensors")
        self.check(self.p("ok.pth"), "--bogus", extra=("--bogus",))
        raw = read(self.p("ok.pth"))
        with open(self.p("truncated.pth"), "wb") as f:
            f.write(raw[:len(raw) // 2])
        self.check(self.p("truncated.pth"), "truncated.pth")
        q = torch.quantize_per_tensor(torch.ones(4), 0.1, 0, torch.qint8)
        torch.save({"state_dict": {"q": q}}, self.p("quant.pth"))
        self.check(self.p("quant.pth"), "'q'", "quantized")
        torch.save({"state_dict": {"c": torch.ones(2, dtype=torch.complex64)}}, self.p("complex.pth"))
        self.check(self.p("complex.pth"), "'c'", "complex64")
        torch.save({"state_dict": {"s": torch.eye(3).to_sparse()}}, self.p("sparse.pth"))
        self.check(self.p("sparse.pth"), "'s'", "sparse")

    def test_bad_safetensors(self):
        save_file({"a": torch.ones(4)}, self.p("good.safetensors"))
        raw = read(self.p("good.safetensors"))
        (n,) = struct.unpack("<Q", raw[:8])
        header = json.loads(raw[8:8 + n])
        header["a"]["data_offsets"] = [0, 20]
        text = json.dumps(header).encode()
        with open(self.p("bad.safetensors"), "wb") as f:
            f.write(struct.pack("<Q", len(text)) + text + raw[8 + n:])
        self.check(self.p("bad.safetensors"), "bad.safetensors", "not a valid safetensors file", dst="out.pth")
        with open(self.p("cut.safetensors"), "wb") as f:
            f.write(raw[:-3])
        self.check(self.p("cut.safetensors"), "cut.safetensors", dst="out.pth")
        save_file({}, self.p("empty.safetensors"))
        self.check(self.p("empty.safetensors"), "holds no tensors", dst="out.pth")


if __name__ == "__main__":
    unittest.main(verbosity=2)

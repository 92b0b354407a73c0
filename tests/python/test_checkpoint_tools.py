"""tools/bevt_pth.py, tools/convert_checkpoint.py and tools/convert_dalle.py without torch.

Run: python3 tests/python/test_checkpoint_tools.py   (ctest -R convert.python)
The independent checks (LibTorch's own deserializer reads what the writer produces, the reader reads what
LibTorch's serializer produces, converted checkpoints run through bevt-run / bevt-forward) are in
tests/test_convert.cpp.
"""
import collections
import contextlib
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest
import zipfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
TOOLS = os.path.join(ROOT, "tools")
sys.path.insert(0, TOOLS)
sys.path.insert(0, HERE)
import bevt_pth as bp  # noqa: E402
import checkpoint_fixtures as fx  # noqa: E402
import convert_checkpoint  # noqa: E402
import convert_dalle  # noqa: E402

TOOL_MODULES = {"convert_checkpoint.py": convert_checkpoint, "convert_dalle.py": convert_dalle}

OD = collections.OrderedDict
KEYS_DALLE = os.path.join(ROOT, "tests", "reference", "keys", "keys_dalle_encoder.txt")


def run_tool(tool, *args):
    """(exit status, stdout, stderr) of the tool's main(), in this process (starting Python with numpy costs
    about a second on a loaded machine); ProcessExit checks the real command lines."""
    mod = TOOL_MODULES[tool]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = mod.main([str(a) for a in args])
        except SystemExit as e:
            rc = e.code
    return rc, out.getvalue(), err.getvalue()


def run_process(tool, *args):
    p = subprocess.run([sys.executable, os.path.join(TOOLS, tool), *map(str, args)], capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


def read(path):
    with open(path, "rb") as f:
        return f.read()


def every_dtype(seed=0):
    """A state dict with every dtype, a 0-d tensor, an empty tensor and awkward values."""
    rng = np.random.default_rng(seed)
    sd = OD()
    sd["backbone.patch_embed.proj.weight"] = bp.Tensor.from_numpy(rng.standard_normal((4, 3, 2, 2, 2)).astype("<f4"))
    sd["backbone.norm.bias"] = bp.Tensor.from_numpy(np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45], "<f4"))
    sd["f64"] = bp.Tensor.from_numpy(rng.standard_normal(5))
    sd["f16"] = bp.Tensor.from_numpy(rng.standard_normal((3, 2)).astype("<f2"))
    sd["bf16"] = bp.Tensor.from_numpy(rng.standard_normal((2, 3)).astype("<f4"), dtype="BF16")
    sd["backbone.layers.0.blocks.0.attn.relative_position_index"] = bp.Tensor.from_numpy(
        rng.integers(-2 ** 40, 2 ** 40, (7, 7), dtype="<i8"))
    sd["i32"] = bp.Tensor.from_numpy(rng.integers(-2 ** 31, 2 ** 31, 4, dtype="<i4"))
    sd["i16"] = bp.Tensor.from_numpy(np.array([-32768, 32767, 0], "<i2"))
    sd["i8"] = bp.Tensor.from_numpy(np.array([-128, 127], "i1"))
    sd["u8"] = bp.Tensor.from_numpy(np.array([0, 255, 7], "u1"))
    sd["mask"] = bp.Tensor.from_numpy(np.array([[True, False], [False, True]]))
    sd["scalar"] = bp.Tensor.from_numpy(np.array(2.5, "<f4"))
    sd["empty"] = bp.Tensor.from_numpy(np.zeros((0, 3), "<f4"))
    sd["cls_head.fc_cls.weight"] = bp.Tensor.from_numpy(rng.standard_normal((10, 4)).astype("<f4"))
    return sd


def mmcv_checkpoint(sd):
    """{"meta", "state_dict", "optimizer"} as mmcv saves it, meta holding objects of classes not installed here."""
    config = bp.Object("mmcv.utils.config", "ConfigDict", {"__frozen": False}, args=())
    meta = {"mmcv_version": "1.3.16", "epoch": 30, "iter": 123456, "time": "Fri Apr  8 12:00:00 2022",
            "config": "model = dict(type='Recognizer3D', ...)", "seed": 0, "exp_name": "bevt.py",
            "hook_msgs": {"last_ckpt": "/out/epoch_30.pth", "best_score": bp.Call("numpy.core.multiarray", "scalar",
                                                                                  ("float64", b"\x00" * 8))},
            "cfg": config, "env": {"shapes": (1, 2, 3), "flags": frozenset({"a"})}}
    first = next(iter(sd.values()))
    optimizer = {"state": {0: {"step": 10, "exp_avg": bp.Tensor.from_numpy(np.ones(first.shape, "<f4"))}},
                 "param_groups": [{"lr": 5e-4, "betas": (0.9, 0.999), "weight_decay": 0.05, "params": [0]}]}
    return {"meta": meta, "state_dict": OD(sd), "optimizer": optimizer}


class Tmp(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="bevt_convert_")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def p(self, name):
        return os.path.join(self.dir, name)

    def assertSame(self, a, b):
        self.assertEqual(list(a), list(b))
        for k in a:
            self.assertEqual(a[k].dtype.name, b[k].dtype.name, k)
            self.assertEqual(a[k].shape, b[k].shape, k)
            self.assertEqual(a[k].tobytes(), b[k].tobytes(), k)

    def assertOneLineError(self, rc, out, err, *words):
        self.assertEqual(rc, 2, out + err)
        self.assertEqual(len(err.strip().splitlines()), 1, err)
        for w in words:
            self.assertIn(w, err)


class RoundTrip(Tmp):
    def test_pth_safetensors_pth_is_identical(self):
        sd = every_dtype()
        bp.save(mmcv_checkpoint(sd), self.p("a.pth"))
        rc, out, err = run_tool("convert_checkpoint.py", self.p("a.pth"), self.p("a.safetensors"))
        self.assertEqual(rc, 0, err)
        self.assertIn("mmcv checkpoint", out)
        self.assertIn(f"{len(sd)} tensors", out)
        st, meta = bp.load_safetensors(self.p("a.safetensors"))
        self.assertSame(sd, st)
        self.assertEqual(meta["format"], "pt")
        for layout, pick in (("mmcv", lambda o: o["state_dict"]), ("plain", lambda o: o),
                             ("model_state", lambda o: o["model_state"]), ("model", lambda o: o["model"])):
            out_pth = self.p(f"b_{layout}.pth")
            rc, out, err = run_tool("convert_checkpoint.py", self.p("a.safetensors"), out_pth, "--layout", layout)
            self.assertEqual(rc, 0, err)
            back = pick(bp.load(out_pth))
            self.assertSame(sd, back)

    def test_safetensors_are_read_independently(self):
        # Parse the written file by hand (the format, not bevt_pth): names, dtypes, shapes, bytes, no gaps.
        sd = every_dtype(1)
        bp.save_safetensors(self.p("x.safetensors"), sd, {"k": "v"})
        raw = read(self.p("x.safetensors"))
        (n,) = struct.unpack("<Q", raw[:8])
        self.assertEqual((8 + n) % 8, 0)
        header = json.loads(raw[8:8 + n], object_pairs_hook=OD)
        self.assertEqual(header.pop("__metadata__"), {"k": "v"})
        self.assertEqual(list(header), list(sd))
        spans = sorted(tuple(e["data_offsets"]) for e in header.values())
        self.assertEqual(spans[0][0], 0)
        self.assertEqual(spans[-1][1], len(raw) - 8 - n)
        for (b0, e0), (b1, e1) in zip(spans, spans[1:]):
            self.assertEqual(e0, b1)
        for k, e in header.items():
            b, e_ = e["data_offsets"]
            self.assertEqual(e["dtype"], sd[k].dtype.name)
            self.assertEqual(e["shape"], list(sd[k].shape))
            self.assertEqual(raw[8 + n + b:8 + n + e_], sd[k].tobytes(), k)
            self.assertEqual(b % sd[k].dtype.size, 0, f"{k} is not aligned")

    def test_pth_layout_matches_torch_save(self):
        bp.save({"w": bp.Tensor.from_numpy(np.arange(5, dtype="<f4"))}, self.p("w.pth"))
        with zipfile.ZipFile(self.p("w.pth")) as z:
            self.assertIsNone(z.testzip())
            names = z.namelist()
            self.assertEqual(names, ["archive/data.pkl", "archive/byteorder", "archive/data/0", "archive/version"])
            self.assertEqual(z.read("archive/version"), b"3\n")
            self.assertEqual(z.read("archive/byteorder"), b"little")
            info = z.getinfo("archive/data/0")
        raw = read(self.p("w.pth"))
        nlen, elen = struct.unpack_from("<HH", raw, info.header_offset + 26)
        self.assertEqual((info.header_offset + 30 + nlen + elen) % 64, 0, "data records are 64-byte aligned")

    def test_zip64_records(self):
        sd = every_dtype(2)
        old = bp._ZIP64_LIMIT
        bp._ZIP64_LIMIT = 16
        try:
            bp.save({"state_dict": sd}, self.p("z.pth"))
        finally:
            bp._ZIP64_LIMIT = old
        with zipfile.ZipFile(self.p("z.pth")) as z:
            self.assertIsNone(z.testzip())
        self.assertSame(sd, bp.load(self.p("z.pth"))["state_dict"])

    def test_views_and_shared_storage(self):
        base = bp.Tensor.from_numpy(np.arange(24, dtype="<f4").reshape(4, 6))
        sd = OD(base=base,
                transposed=bp.Tensor.as_strided(base, (6, 4), (1, 6)),
                columns=bp.Tensor.as_strided(base, (4, 3), (6, 1), offset=2),
                every_other=bp.Tensor.as_strided(base, (2, 3), (12, 2), offset=1),
                tied=base)
        bp.save(sd, self.p("v.pth"))
        with zipfile.ZipFile(self.p("v.pth")) as z:
            self.assertEqual(len([n for n in z.namelist() if "/data/" in n]), 1, "one storage for all views")
        back = bp.load(self.p("v.pth"))
        a = np.arange(24, dtype="<f4").reshape(4, 6)
        np.testing.assert_array_equal(back["transposed"].numpy(), a.T)
        np.testing.assert_array_equal(back["columns"].numpy(), a[:, 2:5])
        np.testing.assert_array_equal(back["every_other"].numpy(), a[::2, 1::2])
        np.testing.assert_array_equal(back["tied"].numpy(), a)
        # A view reaching past its storage is a damaged file, not a crash.
        bad = OD(x=bp.Tensor.as_strided(base, (5, 6), (6, 1)))
        bp.save(bad, self.p("bad.pth"))
        with self.assertRaises(bp.CheckpointError):
            bp.load(self.p("bad.pth"))["x"].numpy()

    def test_big_endian_records(self):
        vals = np.array([1.5, -2.25, 3.0], "<f4")
        pkl = bp._Pickler(lambda t: ("storage", bp._GlobalRef("torch", "FloatStorage"), "0", "cpu", 3)).dumps(
            {"w": bp.Tensor.from_numpy(vals)})
        with open(self.p("be.pth"), "wb") as f:
            bp._write_zip(f, [("archive/data.pkl", pkl), ("archive/byteorder", b"big"),
                              ("archive/data/0", vals.astype(">f4").tobytes()), ("archive/version", b"3\n")])
        np.testing.assert_array_equal(bp.load(self.p("be.pth"))["w"].numpy(), vals)

    def test_legacy_format(self):
        root = bp.Tensor.from_numpy(np.arange(10, dtype="<i8"))
        sub = bp.Tensor.from_numpy(np.arange(3, 7, dtype="<i8"))
        sd = OD(w=bp.Tensor.from_numpy(np.linspace(0, 1, 6, dtype="<f4").reshape(2, 3)),
                h=bp.Tensor.from_numpy(np.ones(4, "<f2")), root=root, sub=sub)
        fx.save_legacy({"state_dict": sd, "epoch": 3}, self.p("old.pth"), views={id(sub): (root, 3, 4)})
        back = bp.load(self.p("old.pth"))
        self.assertEqual(back["epoch"], 3)
        self.assertSame(sd, back["state_dict"])
        rc, out, err = run_tool("convert_checkpoint.py", self.p("old.pth"), self.p("old.safetensors"))
        self.assertEqual(rc, 0, err)
        self.assertIn("legacy", out)
        self.assertSame(sd, bp.load_safetensors(self.p("old.safetensors"))[0])

    def test_bf16_conversion(self):
        x = np.array([1.0, 1.00390625, 1.01171875, -3.5, 65504.0, 1e-3], "<f4")
        t = bp.Tensor.from_numpy(x, dtype="BF16")
        # 1.00390625 is halfway between bf16 1.0 and 1.0078125: ties round to even (1.0); 1.01171875 -> 1.015625
        np.testing.assert_array_equal(t.float32()[:4], np.array([1.0, 1.0, 1.015625, -3.5], "<f4"))
        self.assertTrue(np.allclose(t.float32(), x, rtol=1 / 128))
        self.assertEqual(t.to("F32").dtype.name, "F32")
        np.testing.assert_array_equal(t.to("F32").numpy(), t.float32())


class Safety(Tmp):
    def test_unpickler_never_runs_code(self):
        marker = self.p("pwned")
        evil = {"state_dict": {"w": bp.Tensor.from_numpy(np.ones(2, "<f4"))},
                "meta": {"a": bp.Call("os", "system", (f"touch {marker}",)),
                         "b": bp.Call("builtins", "eval", (f"open({marker!r}, 'w')",)),
                         "c": bp.Call("builtins", "exec", (f"open({marker!r}, 'w')",)),
                         "d": bp.Call("subprocess", "call", (["touch", marker],)),
                         "e": bp.Object("posix", "system", {"x": 1}, args=(f"touch {marker}",))}}
        bp.save(evil, self.p("evil.pth"))
        obj = bp.load(self.p("evil.pth"))
        self.assertFalse(os.path.exists(marker))
        a = obj["meta"]["a"]
        self.assertIsInstance(a, bp.Stub)
        self.assertEqual(a.stub_name(), "os.system")
        self.assertEqual(a.stub_args, (f"touch {marker}",))
        self.assertEqual(obj["meta"]["e"].state_dict(), {"x": 1})
        rc, out, err = run_tool("convert_checkpoint.py", self.p("evil.pth"), self.p("evil.safetensors"))
        self.assertEqual(rc, 0, err)
        self.assertFalse(os.path.exists(marker))

    def test_protocol_0_globals_are_stubbed(self):
        # A hand-written protocol-0 pickle: GLOBAL os.system, REDUCE; INST; and copyreg's old reconstructor.
        marker = self.p("pwned0")
        pkl = (b"(dp0\nVa\ncos\nsystem\n(V" + f"touch {marker}".encode() + b"\ntRsVb\n(ios\nsystem\n"
               b"(tbsVc\nccopy_reg\n_reconstructor\n(c__main__\nThing\nc__builtin__\nobject\nNtRs.")
        with open(self.p("p0.pth"), "wb") as f:
            bp._write_zip(f, [("archive/data.pkl", pkl), ("archive/version", b"3\n")])
        obj = bp.load(self.p("p0.pth"))
        self.assertFalse(os.path.exists(marker))
        self.assertEqual(obj["a"].stub_name(), "os.system")
        self.assertEqual(obj["c"].stub_name(), "__main__.Thing")


class Layouts(Tmp):
    def convert(self, obj, *flags, name="x"):
        bp.save(obj, self.p(name + ".pth"))
        rc, out, err = run_tool("convert_checkpoint.py", self.p(name + ".pth"), self.p(name + ".safetensors"), *flags)
        self.assertEqual(rc, 0, err)
        return bp.load_safetensors(self.p(name + ".safetensors"))[0], out

    def t(self, *shape, v=1.0):
        return bp.Tensor.from_numpy(np.full(shape, v, "<f4"))

    def test_timesformer_model_state_keeps_official_names(self):
        sd = OD([("model.cls_token", self.t(1, 1, 4)), ("model.blocks.0.attn.qkv.weight", self.t(12, 4)),
                 ("model.head.weight", self.t(400, 4))])
        ck = {"epoch": 15, "model_state": sd, "optimizer_state": {"state": {}, "param_groups": []},
              "cfg": bp.Object("fvcore.common.config", "CfgNode", None)}
        st, out = self.convert(ck)
        self.assertIn("PySlowFast", out)
        self.assertEqual(list(st), list(sd))
        st, _ = self.convert(ck, "--strip", "model.", name="y")
        self.assertEqual(list(st), ["cls_token", "blocks.0.attn.qkv.weight", "head.weight"])

    def test_swin2d_model_entry_and_module_prefix(self):
        sd = OD([("module.patch_embed.proj.weight", self.t(2, 3, 4, 4)), ("module.layers.0.blocks.0.attn.qkv.weight",
                                                                           self.t(6, 2))])
        st, out = self.convert({"model": sd, "optimizer": {}, "lr_scheduler": {}, "max_accuracy": 83.5, "epoch": 299})
        self.assertIn("'model'", out)
        self.assertIn("module.", out)
        self.assertEqual(list(st), ["patch_embed.proj.weight", "layers.0.blocks.0.attn.qkv.weight"])
        st, _ = self.convert({"model": sd}, "--keep-module-prefix", name="y")
        self.assertEqual(list(st), list(sd))

    def test_plain_state_dict_and_pickled_module(self):
        sd = OD([("a.weight", self.t(2)), ("b.bias", self.t(3))])
        st, out = self.convert(sd)
        self.assertIn("plain state dict", out)
        self.assertEqual(list(st), list(sd))
        w = fx.tiny_dalle_weights(n_hid=4, vocab=8, n_blk=1, groups=2)
        st, out = self.convert(fx.encoder_object(w), name="m")
        self.assertIn("pickled module (dall_e.encoder.Encoder)", out)
        self.assertSame(w, st)

    def test_bevt_pretrain_selection(self):
        sd = OD([("backbone.patch_embed.proj.weight", self.t(2, 3, 2, 4, 4)), ("backbone.mask_token", self.t(1, 1, 2)),
                 ("cls_head.lm_head.weight", self.t(16, 2)),
                 ("cls_head.vae_encoder.blocks.input.w", self.t(4, 3, 7, 7))])
        st, _ = self.convert(mmcv_checkpoint(sd), "--only", "backbone.", "--strip", "backbone.")
        self.assertEqual(list(st), ["patch_embed.proj.weight", "mask_token"])
        st, _ = self.convert(mmcv_checkpoint(sd), "--exclude", "vae_encoder", "--add-prefix", "x.", name="y")
        self.assertEqual(list(st), ["x.backbone.patch_embed.proj.weight", "x.backbone.mask_token",
                                    "x.cls_head.lm_head.weight"])

    def test_mmcv_ema_buffers(self):
        sd = OD([("backbone.norm.weight", self.t(4, v=1.0)), ("cls_head.fc_cls.weight", self.t(3, 4, v=2.0)),
                 ("ema_backbone_norm_weight", self.t(4, v=5.0)), ("ema_cls_head_fc_cls_weight", self.t(3, 4, v=6.0))])
        st, out = self.convert(mmcv_checkpoint(sd))
        self.assertEqual(list(st), ["backbone.norm.weight", "cls_head.fc_cls.weight"])
        self.assertEqual(st["backbone.norm.weight"].numpy()[0], 1.0)
        self.assertIn("dropped 2 mmcv EMA buffers", out)
        st, _ = self.convert(mmcv_checkpoint(sd), "--ema", "use", name="u")
        self.assertEqual(list(st), ["backbone.norm.weight", "cls_head.fc_cls.weight"])
        self.assertEqual(st["backbone.norm.weight"].numpy()[0], 5.0)
        self.assertEqual(st["cls_head.fc_cls.weight"].numpy()[0, 0], 6.0)
        st, _ = self.convert(mmcv_checkpoint(sd), "--ema", "keep", name="k")
        self.assertEqual(list(st), list(sd))

    def test_key_dtype_and_list(self):
        ck = {"state_dict": OD(a=self.t(2)), "model_ema": OD(a=self.t(2, v=3.0), i=bp.Tensor.from_numpy(
            np.arange(3, dtype="<i8")))}
        st, _ = self.convert(ck, "--key", "model_ema", "--dtype", "bfloat16")
        self.assertEqual(st["a"].dtype.name, "BF16")
        self.assertEqual(st["a"].float32()[0], 3.0)
        self.assertEqual(st["i"].dtype.name, "I64")
        rc, out, err = run_tool("convert_checkpoint.py", self.p("x.pth"), "--list", "--key", "model_ema")
        self.assertEqual(rc, 0, err)
        self.assertIn("a F32 [2]", out)
        self.assertIn("i I64 [3]", out)


class Dalle(Tmp):
    def test_encoder_pkl_to_official_names(self):
        w = fx.tiny_dalle_weights(n_hid=8, vocab=16, n_blk=2, groups=4)
        fx.encoder_pkl(w, self.p("encoder.pkl"))
        rc, out, err = run_tool("convert_dalle.py", self.p("encoder.pkl"), self.p("enc.safetensors"))
        self.assertEqual(rc, 0, err)
        self.assertIn("n_hid = 8", out)
        self.assertIn("vocab_size = 16", out)
        st, meta = bp.load_safetensors(self.p("enc.safetensors"))
        with open(KEYS_DALLE) as f:
            want = [line.split()[0] for line in f if line.strip() and not line.startswith("#")]
        self.assertEqual(sorted(st), sorted(want), "the official encoder's 74 names (OpenAI's Encoder, 2 blocks)")
        self.assertSame(OD((k, w[k]) for k in st), st)
        self.assertEqual((meta["n_hid"], meta["vocab_size"], meta["n_blk_per_group"]), ("8", "16", "2"))

    def test_bevt_checkpoint_and_half_precision(self):
        w = fx.tiny_dalle_weights(n_hid=4, vocab=8, n_blk=1, groups=4, seed=3)
        sd = OD([("backbone.norm.weight", bp.Tensor.from_numpy(np.ones(4, "<f4")))])
        sd.update((f"cls_head.vae_encoder.{k}", v.to("F16")) for k, v in w.items())
        bp.save(mmcv_checkpoint(sd), self.p("bevt.pth"))
        rc, out, err = run_tool("convert_dalle.py", self.p("bevt.pth"), self.p("enc.safetensors"))
        self.assertEqual(rc, 0, err)
        st, _ = bp.load_safetensors(self.p("enc.safetensors"))
        self.assertEqual(sorted(st), sorted(w))
        for k in w:
            self.assertEqual(st[k].dtype.name, "F32")
            np.testing.assert_array_equal(st[k].numpy(), w[k].to("F16").float32())

    def test_errors(self):
        rc, out, err = run_tool("convert_dalle.py", self.p("missing.pkl"), self.p("o.safetensors"))
        self.assertOneLineError(rc, out, err, "missing.pkl", "no such file")
        bp.save({"state_dict": OD(x=bp.Tensor.from_numpy(np.ones(1, "<f4")))}, self.p("other.pth"))
        rc, out, err = run_tool("convert_dalle.py", self.p("other.pth"), self.p("o.safetensors"))
        self.assertOneLineError(rc, out, err, "other.pth", "no DALL-E encoder weights")
        w = fx.tiny_dalle_weights(n_hid=4, vocab=8, n_blk=1, groups=2)
        w["blocks.group_2.block_1.extra.w"] = w["blocks.input.w"]
        bp.save(w, self.p("odd.pth"))
        rc, out, err = run_tool("convert_dalle.py", self.p("odd.pth"), self.p("o.safetensors"))
        self.assertOneLineError(rc, out, err, "blocks.group_2.block_1.extra.w")
        self.assertFalse(os.path.exists(self.p("o.safetensors")))


class ProcessExit(Tmp):
    def test_command_lines_exit_0_and_2(self):
        bp.save({"state_dict": OD(w=bp.Tensor.from_numpy(np.ones(3, "<f4")))}, self.p("a.pth"))
        rc, out, err = run_process("convert_checkpoint.py", self.p("a.pth"), self.p("a.safetensors"))
        self.assertEqual(rc, 0, err)
        self.assertIn("wrote", out)
        rc, out, err = run_process("convert_checkpoint.py", self.p("missing.pth"), self.p("b.safetensors"))
        self.assertOneLineError(rc, out, err, "missing.pth")
        rc, out, err = run_process("convert_dalle.py", self.p("a.pth"), self.p("c.safetensors"))
        self.assertOneLineError(rc, out, err, "no DALL-E encoder weights")
        rc, out, err = run_process("convert_checkpoint.py", "--help")
        self.assertEqual(rc, 0)
        self.assertIn("--layout", out)


class Errors(Tmp):
    def check(self, src, *words, dst="out.safetensors", extra=()):
        rc, out, err = run_tool("convert_checkpoint.py", src, self.p(dst), *extra)
        self.assertOneLineError(rc, out, err, "convert_checkpoint:", *words)
        self.assertFalse(os.path.exists(self.p(dst)), "nothing is written on bad input")
        self.assertEqual([n for n in os.listdir(self.dir) if ".tmp" in n], [])
        return err

    def test_bad_inputs(self):
        self.check(self.p("missing.pth"), "missing.pth", "no such file")
        with open(self.p("notes.txt"), "w") as f:
            f.write("not a checkpoint\n" * 10)
        self.check(self.p("notes.txt"), "notes.txt", "not a PyTorch checkpoint")
        with zipfile.ZipFile(self.p("other.zip"), "w") as z:
            z.writestr("readme.txt", "hello")
        self.check(self.p("other.zip"), "other.zip", "data.pkl")
        with zipfile.ZipFile(self.p("script.pt"), "w") as z:
            z.writestr("script/data.pkl", b"\x80\x02}q\x00.")
            z.writestr("script/constants.pkl", b"\x80\x02).")
        self.check(self.p("script.pt"), "TorchScript")
        import pickle
        with open(self.p("plain.pkl"), "wb") as f:
            pickle.dump({"a": 1}, f, protocol=2)
        self.check(self.p("plain.pkl"), "plain.pkl", "not a PyTorch checkpoint")
        bp.save({"foo": {"bar": 1}, "epoch": 3}, self.p("unknown.pth"))
        self.check(self.p("unknown.pth"), "unknown.pth", "unknown checkpoint layout", "'foo'")
        bp.save({"state_dict": {"a": bp.Tensor.from_numpy(np.ones(2, "<f4")), "b": 3}}, self.p("mixed.pth"))
        self.check(self.p("mixed.pth"), "mixed.pth", "'b'", "not a tensor")
        bp.save({"state_dict": {"a": bp.Tensor.from_numpy(np.ones(2, "<f4"))}}, self.p("ok.pth"))
        self.check(self.p("ok.pth"), "no entry 'ema'", extra=("--key", "ema"))
        self.check(self.p("ok.pth"), "no tensor name starts with head.", extra=("--only", "head."))
        self.check(self.p("ok.pth"), ".safetensors", dst="out.pth")
        self.check(self.p("ok.pth"), "does not exist", dst="no/such/dir/out.safetensors")
        self.check(self.p("ok.pth"), "--bogus", extra=("--bogus",))
        raw = read(self.p("ok.pth"))
        with open(self.p("truncated.pth"), "wb") as f:
            f.write(raw[:len(raw) // 2])
        self.check(self.p("truncated.pth"), "truncated.pth")
        q = {"state_dict": {"q": bp.Call("torch._utils", "_rebuild_qtensor", ())}}
        bp.save(q, self.p("quant.pth"))
        self.check(self.p("quant.pth"), "'q'", "quantized")

    def test_bad_safetensors(self):
        bp.save_safetensors(self.p("good.safetensors"), OD(a=bp.Tensor.from_numpy(np.ones(4, "<f4"))))
        raw = read(self.p("good.safetensors"))
        (n,) = struct.unpack("<Q", raw[:8])
        header = json.loads(raw[8:8 + n])
        header["a"]["data_offsets"] = [0, 20]
        text = json.dumps(header).encode()
        with open(self.p("bad.safetensors"), "wb") as f:
            f.write(struct.pack("<Q", len(text)) + text + raw[8 + n:])
        self.check(self.p("bad.safetensors"), "bad.safetensors", "data_offsets", dst="out.pth")
        with open(self.p("cut.safetensors"), "wb") as f:
            f.write(raw[:-3])
        self.check(self.p("cut.safetensors"), "cut.safetensors", dst="out.pth")


if __name__ == "__main__":
    unittest.main(verbosity=2)

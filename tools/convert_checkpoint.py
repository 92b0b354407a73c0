#!/usr/bin/env python3
"""Convert PyTorch checkpoints to safetensors with the official names, and bevt's safetensors back to .pth.

    bevt-convert SRC.pth DST.safetensors [options]    a PyTorch checkpoint -> safetensors
    bevt-convert SRC.safetensors DST.pth [--layout]   safetensors -> a .pth that torch.load reads

build/bin/bevt-convert runs this file with the Python of bevt's torch (scripts/setup.sh installs torch, numpy
and safetensors there). Checkpoints are read with torch.load(weights_only=True): tensors, plain containers and
an explicit list of harmless classes (tools/checkpoint_io.py); a pickle naming anything else (a function that
would run code, a class of a package that is not installed) is refused. Layouts: mmcv checkpoints {"meta",
"state_dict", "optimizer"} (BEVT pre-train and fine-tune, Video Swin), PySlowFast's {"model_state", ...}
(TimeSformer), {"model", ...} (Swin 2D ImageNet, timm, DeiT), plain state dicts and pickled nn.Module objects
of torch.nn classes. The layout is detected (or named with --key); names stay the official ones, DDP's
"module." prefix is removed. Both torch.save formats (zip and the legacy one of torch < 1.6) are read.

Examples:
    build/bin/bevt-convert bevt_ssv2.pth bevt_ssv2.safetensors
    build/bin/bevt-convert swin_base_patch4_window7_224.pth swin_b_in1k.safetensors
    build/bin/bevt-convert bevt_pretrain.pth backbone.safetensors --only backbone. --strip backbone.
    build/bin/bevt-convert work_dirs/ssv2/checkpoints/step_100/model.safetensors ssv2.pth
    build/bin/bevt-convert dalle encoder.pkl weights/dalle_encoder.safetensors   (tools/convert_dalle.py)

Bad input (a missing file, not a checkpoint, a refused pickle, an unknown layout, a non-tensor where a tensor
is needed) is a one-line error with exit status 2; nothing is written then.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checkpoint_io as cio  # noqa: E402  (one line and exit 2 without torch)

torch = cio.torch

PROG = "convert_checkpoint"
EMA_PREFIX = "ema_"


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise cio.CheckpointError(f"{message} (see --help)")


def parse_args(argv):
    ap = _Parser(prog=os.environ.get("BEVT_CONVERT_PROG", "convert_checkpoint.py"),
                 description=__doc__.split("\n\n")[0],
                 formatter_class=argparse.RawDescriptionHelpFormatter,
                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("src", help="a PyTorch checkpoint (.pth/.pt/.pkl/.bin) or a safetensors file")
    ap.add_argument("dst", nargs="?", help="output: .safetensors for a checkpoint, .pth/.pt for a safetensors file")
    g = ap.add_argument_group("checkpoint -> safetensors")
    g.add_argument("--key", help="the top-level entry holding the state dict (default: detected: "
                                 + ", ".join(cio.STATE_DICT_KEYS) + ", or the file itself)")
    g.add_argument("--only", action="append", default=[], metavar="PREFIX",
                   help="keep only tensors whose name starts with PREFIX (repeatable), e.g. --only backbone.")
    g.add_argument("--exclude", action="append", default=[], metavar="TEXT",
                   help="drop tensors whose name contains TEXT (repeatable), e.g. --exclude relative_position_index")
    g.add_argument("--strip", action="append", default=[], metavar="PREFIX",
                   help="remove PREFIX from the names that start with it (repeatable, after --only), e.g. "
                        "--strip model. for TimeSformer names without the wrapper")
    g.add_argument("--add-prefix", default="", metavar="PREFIX", help="put PREFIX before every name (last)")
    g.add_argument("--keep-module-prefix", action="store_true",
                   help="keep DDP's 'module.' prefix (removed by default when every name has it)")
    g.add_argument("--ema", choices=("keep", "drop", "use"), default="keep",
                   help="mmcv EMAHook buffers ema_<name with . as _>: keep them (default: bevt's loader lists "
                        "them and evaluates the plain weights, as mmaction's test.py does), drop them, or use "
                        "them in place of the parameters. In an epoch_N.pth the plain weights are the live ones "
                        "and ema_* the averages (CheckpointHook saves before the hook's swap); in a best_*.pth "
                        "it is the other way round (EvalHook saves after it), so --ema use takes the live ones")
    g.add_argument("--dtype", choices=("keep", "float32", "float16", "bfloat16"), default="keep",
                   help="convert floating-point tensors (integer buffers stay as they are)")
    g.add_argument("--list", action="store_true", help="print the selected names, dtypes and shapes; write nothing")
    g = ap.add_argument_group("safetensors -> .pth")
    g.add_argument("--layout", choices=("mmcv", "plain", "model_state", "model"), default="mmcv",
                   help="mmcv: {'meta', 'state_dict'} (mmaction/BEVT load_checkpoint; default), plain: the state "
                        "dict itself, model_state: PySlowFast/TimeSformer, model: Swin 2D/timm")
    args = ap.parse_args(argv)
    if args.dst is None and not args.list:
        ap.error("the output file DST is required (or --list)")
    return args


def _startswith_any(name, prefixes):
    return any(name.startswith(p) for p in prefixes)


def select(sd, args, notes):
    """Applies --ema, module. stripping, --only, --exclude, --strip, --add-prefix and --dtype, in that order."""
    ema = [k for k in sd if k.startswith(EMA_PREFIX)]
    if ema:
        if args.ema == "drop":
            sd = {k: v for k, v in sd.items() if not k.startswith(EMA_PREFIX)}
            notes.append(f"dropped {len(ema)} mmcv EMA buffers ({EMA_PREFIX}*); --ema use takes them as the "
                         "weights, --ema keep keeps them")
        elif args.ema == "keep":
            notes.append(f"kept {len(ema)} mmcv EMA buffers ({EMA_PREFIX}*); bevt's loader lists them and uses "
                         "the plain weights (--ema use takes the buffers as the weights, --ema drop drops them)")
        elif args.ema == "use":
            by_flat = {k.replace(".", "_"): k for k in sd if not k.startswith(EMA_PREFIX)}
            out, used = {}, 0
            for k, v in sd.items():
                if k.startswith(EMA_PREFIX):
                    continue
                e = sd.get(EMA_PREFIX + k.replace(".", "_"))
                if e is not None:
                    if e.shape != v.shape or e.dtype != v.dtype:
                        raise cio.CheckpointError(f"{args.src}: EMA buffer {EMA_PREFIX}{k.replace('.', '_')} "
                                                  f"({cio.spec(e)}) does not match {k} ({cio.spec(v)})")
                    v, used = e, used + 1
                out[k] = v
            orphans = [k for k in ema if k[len(EMA_PREFIX):] not in by_flat]
            if orphans:
                raise cio.CheckpointError(f"{args.src}: EMA buffers without a parameter: {', '.join(orphans[:3])}")
            sd = out
            notes.append(f"took {used} parameters from their mmcv EMA buffers ({EMA_PREFIX}*)")
    names = list(sd)
    if not args.keep_module_prefix and names and all(k.startswith("module.") for k in names):
        sd = {k[len("module."):]: v for k, v in sd.items()}
        notes.append("removed DDP's 'module.' prefix")
    if args.only:
        sd = {k: v for k, v in sd.items() if _startswith_any(k, args.only)}
        if not sd:
            raise cio.CheckpointError(f"{args.src}: no tensor name starts with {' or '.join(args.only)} "
                                      f"(names look like {', '.join(names[:3])})")
    if args.exclude:
        sd = {k: v for k, v in sd.items() if not any(x in k for x in args.exclude)}
        if not sd:
            raise cio.CheckpointError(f"{args.src}: --exclude {' '.join(args.exclude)} leaves no tensor")
    out = {}
    for k, v in sd.items():
        for p in args.strip:
            if k.startswith(p):
                k = k[len(p):]
        k = args.add_prefix + k
        if not k:
            raise cio.CheckpointError(f"{args.src}: --strip leaves an empty name")
        if k in out:
            raise cio.CheckpointError(f"{args.src}: two tensors become '{k}' after --strip/--add-prefix")
        out[k] = v
    if args.dtype != "keep":
        d = getattr(torch, args.dtype)
        out = {k: v.to(d) if v.is_floating_point() else v for k, v in out.items()}
    return out


def summary(tensors):
    floats = sum(t.numel() for t in tensors.values() if t.is_floating_point())
    counts = {}
    for t in tensors.values():
        counts[cio.dtype_name(t)] = counts.get(cio.dtype_name(t), 0) + 1
    dtypes = ", ".join(f"{n} {c}" for n, c in sorted(counts.items(), key=lambda x: -x[1]))
    nbytes = sum(t.numel() * t.element_size() for t in tensors.values())
    return f"{len(tensors)} tensors, {floats / 1e6:.2f}M parameters ({dtypes}), {cio.human_bytes(nbytes)}"


def to_safetensors(args):
    fmt = cio.sniff(args.src)
    obj = cio.load_pth(args.src)
    sd, layout = cio.find_state_dict(obj, args.src, args.key)
    print(f"read {args.src}: {'torch.save zip' if fmt == 'zip' else 'legacy torch.save'} format, {layout}")
    notes = []
    tensors = select(sd, args, notes)
    for n in notes:
        print(f"  {n}")
    if args.list:
        for k, t in tensors.items():
            print(f"{k} {cio.spec(t)}")
        print(f"selected {summary(tensors)}")
        return 0
    if not args.dst.endswith(".safetensors"):
        raise cio.CheckpointError(f"{args.dst}: the output of a PyTorch checkpoint is a .safetensors file")
    if os.path.abspath(args.dst) == os.path.abspath(args.src):
        raise cio.CheckpointError(f"{args.dst}: the output would overwrite the input")
    meta = {"format": "pt", "source": os.path.basename(args.src), "converted_by": "bevt tools/convert_checkpoint.py"}
    cio.save_safetensors(args.dst, tensors, meta)
    print(f"wrote {args.dst}: {summary(tensors)}")
    return 0


def to_pth(args):
    tensors, meta = cio.load_safetensors(args.src)
    if not tensors:
        raise cio.CheckpointError(f"{args.src}: holds no tensors")
    if args.list:
        for k, t in tensors.items():
            print(f"{k} {cio.spec(t)}")
        print(f"{args.src}: {summary(tensors)}")
        return 0
    if args.dst.endswith(".safetensors"):
        raise cio.CheckpointError(f"{args.dst}: the output of a safetensors file is a .pth file")
    if os.path.abspath(args.dst) == os.path.abspath(args.src):
        raise cio.CheckpointError(f"{args.dst}: the output would overwrite the input")
    sd = dict(tensors)
    info = {"source": os.path.basename(args.src), "converted_by": "bevt tools/convert_checkpoint.py"}
    info.update({f"safetensors.{k}": v for k, v in meta.items()})
    if args.layout == "plain":
        obj = sd
    elif args.layout == "mmcv":
        obj = {"meta": info, "state_dict": sd}
    else:
        obj = {args.layout: sd, "meta": info}
    cio.save_pth(obj, args.dst)
    shape = {"plain": "the state dict itself", "mmcv": "{'meta', 'state_dict'}"}.get(
        args.layout, f"{{'{args.layout}', 'meta'}}")
    print(f"wrote {args.dst}: {summary(tensors)}, torch.save zip format, {shape}")
    return 0


def main(argv=None):
    try:
        args = parse_args(sys.argv[1:] if argv is None else argv)
        if cio.sniff(args.src) == "safetensors":
            return to_pth(args)
        return to_safetensors(args)
    except Exception as e:  # noqa: BLE001  one line, never a traceback (cio.fail sorts them)
        return cio.fail(PROG, e)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Convert DALL-E dVAE encoder weights to safetensors for bevt's `dalle` tokenizer.

    build/bin/bevt-convert dalle encoder.pkl weights/dalle_encoder.safetensors

build/bin/bevt-convert dalle runs this file with the Python of bevt's torch. Accepted inputs:
  * OpenAI's encoder.pkl (https://cdn.openai.com/dall-e/encoder.pkl): a whole pickled dall_e.encoder.Encoder
    module, not a state dict. It is read with torch.load(weights_only=True), its dall_e classes allow-listed as
    inert stand-ins that only record their state (tools/checkpoint_io.py): OpenAI's dall_e package is neither
    needed nor imported, and nothing in the file runs; its parameters are read from that state;
  * a BEVT pre-training checkpoint (.pth), whose state_dict keeps the frozen encoder under
    cls_head.vae_encoder.*, or a bevt/BEVT whole-model safetensors file with those names;
  * a state dict (.pth or .safetensors) already under the official names, optionally behind "module." or
    "encoder.".

The output holds float32 tensors under the official names (blocks.input.w, blocks.group_1.block_1.res_path.
conv_1.w, ..., blocks.output.conv.b), which the tokenizer loads strictly; set
`weights = "weights/dalle_encoder.safetensors"` in the experiment's [tokenizer] table. The sizes it found are
printed as the matching tokenizer keys. Bad input is a one-line error with exit status 2; nothing is written.
"""
import argparse
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checkpoint_io as cio  # noqa: E402  (one line and exit 2 without torch)

PROG = "convert_dalle"
PREFIX_BEVT = "cls_head.vae_encoder."
NAME = re.compile(r"^blocks\.(input|output\.conv|group_(\d+)\.block_(\d+)\.(id_path|res_path\.conv_[1-4]))\.(w|b)$")


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise cio.CheckpointError(f"{message} (see --help)")


def read_tensors(path, key):
    """name -> Tensor of any accepted input, before selecting the encoder's names."""
    if cio.sniff(path) == "safetensors":
        tensors, _ = cio.load_safetensors(path)
        return tensors, "safetensors"
    obj = cio.load_pth(path)
    sd, layout = cio.find_state_dict(obj, path, key)
    return sd, layout


def encoder_tensors(sd, path):
    names = list(sd)
    if any(k.startswith(PREFIX_BEVT) for k in names):
        sd = {k[len(PREFIX_BEVT):]: v for k, v in sd.items() if k.startswith(PREFIX_BEVT)}
        where = f"the BEVT tokenizer ({PREFIX_BEVT}*)"
    else:
        for prefix in ("module.", "encoder."):
            if sd and all(k.startswith(prefix) for k in sd):
                sd = {k[len(prefix):]: v for k, v in sd.items()}
        where = "the state dict"
    enc = {k: v for k, v in sd.items() if k.startswith("blocks.")}
    if "blocks.input.w" not in enc or "blocks.output.conv.w" not in enc:
        raise cio.CheckpointError(f"{path}: no DALL-E encoder weights (blocks.input.w ... blocks.output.conv.b) in "
                                  f"{where}; names look like {', '.join(names[:3])}")
    odd = [k for k in enc if not NAME.match(k)]
    if odd:
        raise cio.CheckpointError(f"{path}: not DALL-E encoder names: {', '.join(odd[:4])}")
    return enc


def architecture(enc, path):
    w_in, w_out = enc["blocks.input.w"], enc["blocks.output.conv.w"]
    if len(w_in.shape) != 4 or len(w_out.shape) != 4:
        raise cio.CheckpointError(f"{path}: blocks.input.w {list(w_in.shape)} and blocks.output.conv.w "
                                  f"{list(w_out.shape)} are not convolution weights")
    groups = {}
    for k in enc:
        m = NAME.match(k)
        if m.group(2):
            groups.setdefault(int(m.group(2)), set()).add(int(m.group(3)))
    if not groups or sorted(groups) != list(range(1, len(groups) + 1)):
        raise cio.CheckpointError(f"{path}: encoder groups {sorted(groups)} are not group_1 .. group_N")
    counts = {len(b) for b in groups.values()}
    if len(counts) != 1 or any(sorted(b) != list(range(1, len(b) + 1)) for b in groups.values()):
        raise cio.CheckpointError(f"{path}: encoder groups have different blocks: "
                                  + ", ".join(f"group_{g}: {sorted(b)}" for g, b in sorted(groups.items())))
    return {"n_hid": w_in.shape[0], "input_channels": w_in.shape[1], "vocab_size": w_out.shape[0],
            "group_count": len(groups), "n_blk_per_group": counts.pop()}


def main(argv=None):
    ap = _Parser(prog=os.environ.get("BEVT_CONVERT_PROG", "convert_dalle.py"),
                 description=__doc__.split("\n\n")[0],
                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("src", help="encoder.pkl, a BEVT checkpoint, or a state dict (.pth or .safetensors)")
    ap.add_argument("dst", help="output .safetensors")
    ap.add_argument("--key", help="top-level entry holding the state dict (default: detected)")
    try:
        args = ap.parse_args(sys.argv[1:] if argv is None else argv)
        if not args.dst.endswith(".safetensors"):
            raise cio.CheckpointError(f"{args.dst}: the output is a .safetensors file")
        sd, layout = read_tensors(args.src, args.key)
        enc = encoder_tensors(sd, args.src)
        arch = architecture(enc, args.src)
        tensors = {k: v.to(cio.torch.float32) for k, v in enc.items()}
        meta = {"format": "pt", "source": os.path.basename(args.src), "converted_by": "bevt tools/convert_dalle.py"}
        meta.update({k: str(v) for k, v in arch.items()})
        cio.save_safetensors(args.dst, tensors, meta)
    except Exception as e:  # noqa: BLE001  one line, never a traceback (cio.fail sorts them)
        return cio.fail(PROG, e)
    params = sum(t.numel() for t in tensors.values())
    print(f"read {args.src}: {layout}")
    print(f"wrote {args.dst}: {len(tensors)} tensors, {params / 1e6:.1f}M parameters (float32)")
    default = {"n_hid": 256, "input_channels": 3, "vocab_size": 8192, "group_count": 4, "n_blk_per_group": 2}
    if arch == default:
        print("the released encoder's sizes: the dalle tokenizer's defaults fit; set only weights = ...")
    else:
        print("tokenizer keys for these weights: " + ", ".join(f"{k} = {v}" for k, v in arch.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Convert DALL-E dVAE encoder weights to safetensors for bevt's `dalle` tokenizer.

Accepted inputs:
  * OpenAI's encoder.pkl (https://cdn.openai.com/dall-e/encoder.pkl): a pickled torch module, so the
    `dall_e` package (pip install git+https://github.com/openai/DALL-E) must be importable to unpickle it;
  * a BEVT checkpoint (.pth) whose state_dict holds the encoder under `cls_head.vae_encoder.*`;
  * a plain state dict (.pth/.pt) already under the official names.

The output holds float32 tensors under the official names (blocks.input.w, blocks.group_1.block_1.res_path.conv_1.w,
..., blocks.output.conv.b), which the tokenizer loads strictly:

    python tools/convert_dalle.py encoder.pkl weights/dalle_encoder.safetensors

Then set `weights = "weights/dalle_encoder.safetensors"` in the tokenizer table of the experiment.
Needs Python 3 and torch; uses the `safetensors` package when installed, else writes the format itself.
"""
import argparse
import json
import struct
import sys

import torch

PREFIX_BEVT = "cls_head.vae_encoder."


def load_any(path):
    obj = torch.load(path, map_location="cpu")
    if isinstance(obj, torch.nn.Module):  # encoder.pkl
        return obj.state_dict()
    if isinstance(obj, dict):
        for key in ("state_dict", "model", "model_state"):
            if key in obj and isinstance(obj[key], dict):
                obj = obj[key]
                break
        if any(k.startswith(PREFIX_BEVT) for k in obj):
            return {k[len(PREFIX_BEVT):]: v for k, v in obj.items() if k.startswith(PREFIX_BEVT)}
        for prefix in ("module.", "encoder."):
            if obj and all(k.startswith(prefix) for k in obj):
                obj = {k[len(prefix):]: v for k, v in obj.items()}
        return obj
    raise SystemExit(f"{path}: neither a torch module nor a state dict ({type(obj).__name__})")


def write_safetensors(path, tensors, metadata):
    try:
        from safetensors.torch import save_file
        save_file(tensors, path, metadata=metadata)
        return
    except ImportError:
        pass
    header = {"__metadata__": metadata}
    offset = 0
    blobs = []
    for name in sorted(tensors):
        data = tensors[name].numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape),
                        "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src", help="encoder.pkl, a BEVT checkpoint, or a state dict")
    ap.add_argument("dst", help="output .safetensors")
    args = ap.parse_args()
    try:
        sd = load_any(args.src)
    except ModuleNotFoundError as e:
        raise SystemExit(f"{args.src}: {e}; encoder.pkl is a pickled module: "
                         "pip install git+https://github.com/openai/DALL-E first")
    tensors = {k: v.detach().to(torch.float32).contiguous() for k, v in sd.items()
               if k.startswith("blocks.") and torch.is_tensor(v)}
    if "blocks.output.conv.w" not in tensors:
        raise SystemExit(f"{args.src}: no DALL-E encoder weights found (expected blocks.*.w / blocks.*.b keys)")
    vocab, width = tensors["blocks.output.conv.w"].shape[:2]
    n_hid = tensors["blocks.input.w"].shape[0]
    blocks = {k.split(".")[2] for k in tensors if k.startswith("blocks.group_1.")}
    meta = {"format": "pt", "source": args.src, "vocab_size": str(vocab), "n_hid": str(n_hid),
            "n_blk_per_group": str(len(blocks))}
    write_safetensors(args.dst, tensors, meta)
    print(f"wrote {args.dst}: {len(tensors)} tensors, {sum(t.numel() for t in tensors.values()) / 1e6:.1f}M "
          f"parameters (n_hid {n_hid}, {len(blocks)} blocks per group, vocabulary {vocab})")


if __name__ == "__main__":
    sys.exit(main())

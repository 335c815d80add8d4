#!/usr/bin/env python3
"""Converts an AutoFormer supernet checkpoint of microsoft/Cream's key layout
(Vision_TransformerSuper: patch_embed_super.proj.weight, blocks.<i>.attn.qkv.weight,
blocks.<i>.attn_layer_norm.weight, blocks.<i>.fc1.weight, pos_embed, cls_token,
norm.weight, head.weight, ...) from a PyTorch .pth file to safetensors, which
`neurn nas autoformer search --supernet FILE` (load_supernet_weights) reads.

    /usr/bin/python3 scripts/convert_autoformer_checkpoint.py supernet.pth supernet.safetensors

Accepted: a bare state dict, or the dict the reference's training saves with the
state dict under "model" (or "state_dict"); a "module." prefix (DistributedDataParallel)
is dropped. The qkv rows keep the reference's interleaved order (q, k, v = rows 0, 1, 2
mod 3), which is neurn's supernet layout too, so nothing is permuted. Relative
position tables (blocks.<i>.attn.rel_pos_embed_k/v.embeddings_table_v/h, from the
reference's --relative_position) are kept: load them into a space with
`relative_position: true`.
Needs python3-torch; the safetensors file is written without the safetensors package.
"""
import argparse
import json
import struct
import sys

DTYPES = {"torch.float32": "F32", "torch.float64": "F64", "torch.float16": "F16", "torch.bfloat16": "BF16",
          "torch.int64": "I64"}


def state_dict_of(checkpoint):
    if isinstance(checkpoint, dict):
        for key in ("model", "state_dict"):
            if key in checkpoint and isinstance(checkpoint[key], dict):
                return checkpoint[key]
    return checkpoint


def write_safetensors(path, tensors, metadata):
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        t = t.detach().cpu().contiguous()
        dtype = DTYPES.get(str(t.dtype))
        if dtype is None:
            sys.exit(f"convert_autoformer_checkpoint: {name} has dtype {t.dtype}, not one of {sorted(DTYPES)}")
        data = t.view(-1).view(dtype=__import__("torch").uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header["__metadata__"] = metadata
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("input", help="the .pth checkpoint")
    ap.add_argument("output", help="the .safetensors file to write")
    args = ap.parse_args()
    import torch

    sd = state_dict_of(torch.load(args.input, map_location="cpu"))
    if not isinstance(sd, dict):
        sys.exit(f"convert_autoformer_checkpoint: {args.input} holds no state dict")
    sd = {(k[len("module."):] if k.startswith("module.") else k): v for k, v in sd.items()
          if torch.is_tensor(v)}
    if "patch_embed_super.proj.weight" not in sd:
        sys.exit(f"convert_autoformer_checkpoint: {args.input} is not an AutoFormer supernet checkpoint "
                 f"(no patch_embed_super.proj.weight; keys start with {sorted(sd)[:3]})")
    rel = any("rel_pos_embed" in k for k in sd)
    write_safetensors(args.output, sd, {"source": args.input, "format": "microsoft/Cream AutoFormer supernet",
                                        "relative_position": "true" if rel else "false"})
    print(f"{len(sd)} tensors -> {args.output}" + (" (with relative position tables: relative_position: true)"
                                                     if rel else ""))


if __name__ == "__main__":
    main()

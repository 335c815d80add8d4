#!/usr/bin/env python3
"""Converts a ShuffleNet v1 ImageNet checkpoint of megvii-model/ShuffleNet-Series
(ShuffleNetV1, e.g. group 3, 1.0x: a .pth.tar whose "state_dict" has keys
"module.first_conv.0.weight", "module.features.0.branch_main_1.0.weight", ...,
"module.classifier.0.weight") to safetensors with neurn's keys, which are
megvii's without "module." (models/shufflenet_v1.cpp builds the network with
their module names and their channel shuffle). neurn's `shufflenet` loads the
result through the usual weights path (a run's `weights:`, or
`neurn forward --weights`).

    /usr/bin/python3 scripts/convert_shufflenet_v1_checkpoint.py ShuffleNetV1.pth.tar shufflenet_v1.safetensors

Accepted: the dict with "state_dict" (megvii's save_checkpoint), or a bare state
dict. BatchNorm's num_batches_tracked counters are kept (neurn's BatchNorm2d has
them too). The input normalization megvii trained with is not recorded here (not checked
against their data pipeline): set the run's `normalize:` yourself.
Needs python3-torch; the safetensors file is
written without the safetensors package.
"""
import argparse
import json
import struct
import sys

DTYPES = {"torch.float32": "F32", "torch.float64": "F64", "torch.float16": "F16", "torch.int64": "I64"}


def write_safetensors(path, tensors, metadata):
    import torch

    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        t = t.detach().cpu().contiguous()
        dtype = DTYPES.get(str(t.dtype))
        if dtype is None:
            sys.exit(f"convert_shufflenet_v1_checkpoint: {name} has dtype {t.dtype}, not one of {sorted(DTYPES)}")
        data = t.view(-1).view(dtype=torch.uint8).numpy().tobytes() if t.numel() else b""
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
    ap.add_argument("input", help="megvii's .pth.tar checkpoint")
    ap.add_argument("output", help="the .safetensors file to write")
    args = ap.parse_args()
    import torch

    ck = torch.load(args.input, map_location="cpu")
    sd = ck["state_dict"] if isinstance(ck, dict) and isinstance(ck.get("state_dict"), dict) else ck
    if not isinstance(sd, dict):
        sys.exit(f"convert_shufflenet_v1_checkpoint: {args.input} holds no state dict")
    out = {}
    for k, v in sd.items():
        if not torch.is_tensor(v):
            continue
        out[k[len("module."):] if k.startswith("module.") else k] = v
    if "first_conv.0.weight" not in out or "classifier.0.weight" not in out:
        sys.exit(f"convert_shufflenet_v1_checkpoint: {args.input} is not a megvii ShuffleNetV1 checkpoint "
                 f"(no first_conv.0.weight / classifier.0.weight; keys start with {sorted(out)[:3]})")
    write_safetensors(args.output, out, {"source": args.input, "format": "megvii-model/ShuffleNet-Series ShuffleNetV1",
                                         "classes": str(out["classifier.0.weight"].shape[0])})
    print(f"{len(out)} tensors -> {args.output}")


if __name__ == "__main__":
    main()

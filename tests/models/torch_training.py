#!/usr/bin/env python3
"""The PyTorch side of tests/models/test_torch_training.cpp.

Trains the digits ConvNet (conv5x5-64, ReLU, maxpool2, conv5x5-128, ReLU,
maxpool2, fc 1024, ReLU, fc 1024, ReLU, fc 10: models/digits_convnet.cpp) from
the initial weights neurn wrote, on the images, labels and batch order neurn
wrote, with Adam (torch.optim.Adam, the trainer's default optimizer) and the
mean cross-entropy, and writes the loss of every step and the final weights.

    torch_training.py DATA.safetensors INIT.safetensors OUT.safetensors DTYPE LR BATCH

DATA holds images (N, 3, S, S) float32, labels (N,) int64 and order (S * BATCH,)
int64: step s trains on images order[s * BATCH : (s + 1) * BATCH]. DTYPE is
float32 or float64 (the model, data and optimizer state). OUT holds loss (S,)
float64 and the state dict after the last step, in DTYPE.

safetensors is read and written with struct and json (no dependency on the
package).
"""
import json
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

NP = {"F32": np.float32, "F64": np.float64, "I64": np.int64}
ST = {torch.float32: "F32", torch.float64: "F64", torch.int64: "I64"}


def load_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        blob = f.read()
    out = {}
    for name, h in header.items():
        if name == "__metadata__":
            continue
        b, e = h["data_offsets"]
        a = np.frombuffer(blob[b:e], dtype=NP[h["dtype"]]).reshape(h["shape"])
        out[name] = torch.from_numpy(a.copy())
    return out


def save_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        data = t.detach().contiguous().cpu().numpy().tobytes()
        header[name] = {"dtype": ST[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def digits_convnet(size, classes=10):
    s = ((size - 4) // 2 - 4) // 2  # the maps after conv5, pool2, conv5, pool2
    m = nn.Sequential()
    m.add_module("features", nn.Sequential(nn.Conv2d(3, 64, 5), nn.ReLU(), nn.MaxPool2d(2),
                                           nn.Conv2d(64, 128, 5), nn.ReLU(), nn.MaxPool2d(2)))
    m.add_module("flatten", nn.Flatten())
    m.add_module("classifier", nn.Sequential(nn.Linear(128 * s * s, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(),
                                             nn.Linear(1024, classes)))
    return m


def main():
    if len(sys.argv) != 7:
        sys.exit(__doc__)
    data_path, init_path, out_path, dtype_name, lr, batch = sys.argv[1:]
    dtype = {"float32": torch.float32, "float64": torch.float64}[dtype_name]
    lr, batch = float(lr), int(batch)
    torch.set_num_threads(2)
    data = load_safetensors(data_path)
    images, labels, order = data["images"].to(dtype), data["labels"], data["order"]
    model = digits_convnet(images.shape[-1])
    model.load_state_dict(load_safetensors(init_path), strict=True)
    model.to(dtype).train()
    opt = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.999), eps=1e-8)
    steps = order.numel() // batch
    losses = torch.zeros(steps, dtype=torch.float64)
    for s in range(steps):
        idx = order[s * batch:(s + 1) * batch]
        loss = F.cross_entropy(model(images[idx]), labels[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses[s] = loss.item()
    out = {"loss": losses}
    out.update(model.state_dict())
    save_safetensors(out_path, out)


if __name__ == "__main__":
    main()

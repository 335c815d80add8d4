"""Writes a .pth checkpoint in microsoft/Cream AutoFormer's layout (the state
dict under "model", keys with DistributedDataParallel's "module." prefix) for
test_autoformer_checkpoint.cpp: keys and shapes from a text file (one
"name d0 d1 ..." line each), value i of key k = float32((i % 97) * 0.01 + k * 0.001)."""
import sys

import torch

keys_file, out = sys.argv[1], sys.argv[2]
sd = {}
with open(keys_file) as f:
    for k, line in enumerate(f):
        name, *dims = line.split()
        shape = [int(d) for d in dims]
        n = 1
        for d in shape:
            n *= d
        values = (torch.arange(n, dtype=torch.float64) % 97) * 0.01 + k * 0.001
        sd["module." + name] = values.float().reshape(shape)
torch.save({"model": sd, "epoch": 3, "args": None}, out)

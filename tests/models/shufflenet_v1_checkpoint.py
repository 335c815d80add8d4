"""Writes a .pth.tar in megvii-model/ShuffleNet-Series' ShuffleNetV1 layout for
test_shufflenet_v1_weights.cpp: {"state_dict": {"module." + key: tensor}, ...}
with keys and shapes from a text file (one "name d0 d1 ..." line each); value
i of key k = float32((i % 89) * 0.01 - k * 0.001), BN num_batches_tracked
counters (int64 scalars, as nn.BatchNorm2d has them) = 7."""
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
        if name.endswith("num_batches_tracked"):
            sd["module." + name] = torch.tensor(7)
            continue
        values = (torch.arange(n, dtype=torch.float64) % 89) * 0.01 - k * 0.001
        sd["module." + name] = values.float().reshape(shape)
torch.save({"epoch": 240, "state_dict": sd, "best_prec1": 0.0}, out)

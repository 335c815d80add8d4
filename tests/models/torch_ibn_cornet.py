"""PyTorch references of resnet50_ibn_a and cornet_s for tests/models/test_registry_new_ops.cpp.

usage: torch_ibn_cornet.py OUTDIR

Neither is in torchvision, so both are built here from their authors'
definitions as facts (XingangPan/IBN-Net ibnnet/resnet_ibn.py: torchvision's
ResNet-50 whose bottleneck bn1 in layer1-3 is IN on the first half of the
channels and BN on the rest, concatenated; dicarlolab/CORnet cornet_s.py:
V1 stem, recurrent V2/V4/IT blocks with shared convolutions and per-step
batch norms, decoder). Random weights and BN statistics at 10 classes; writes
OUTDIR/<name>.weights.safetensors and OUTDIR/<name>.io.safetensors with the
input (2, 3, 64, 64), the eval output (float32) and a training-mode output
in float64 (batch and instance statistics).
"""
import importlib.util
import os
import sys
from collections import OrderedDict

import torch
import torch.nn as nn
import torchvision

_spec = importlib.util.spec_from_file_location(
    "torch_reference", os.path.join(os.path.dirname(os.path.abspath(__file__)), "torch_reference.py"))
_ref = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_ref)


class IBN(nn.Module):
    def __init__(self, planes):
        super().__init__()
        self.half = planes // 2
        self.IN = nn.InstanceNorm2d(self.half, affine=True)
        self.BN = nn.BatchNorm2d(planes - self.half)

    def forward(self, x):
        a, b = torch.split(x, [self.half, x.shape[1] - self.half], 1)
        return torch.cat([self.IN(a), self.BN(b)], 1)


def resnet50_ibn_a(num_classes):
    model = torchvision.models.resnet50(num_classes=num_classes)
    for layer in (model.layer1, model.layer2, model.layer3):
        for block in layer:
            block.bn1 = IBN(block.bn1.num_features)
    return model


class CORblockS(nn.Module):
    def __init__(self, cin, cout, times):
        super().__init__()
        self.times = times
        mid = 4 * cout
        self.conv_input = nn.Conv2d(cin, cout, 1, bias=False)
        self.skip = nn.Conv2d(cout, cout, 1, stride=2, bias=False)
        self.norm_skip = nn.BatchNorm2d(cout)
        self.conv1 = nn.Conv2d(cout, mid, 1, bias=False)
        self.conv2 = nn.Conv2d(mid, mid, 3, padding=1, bias=False)
        self.conv3 = nn.Conv2d(mid, cout, 1, bias=False)
        for t in range(times):
            setattr(self, f"norm1_{t}", nn.BatchNorm2d(mid))
            setattr(self, f"norm2_{t}", nn.BatchNorm2d(mid))
            setattr(self, f"norm3_{t}", nn.BatchNorm2d(cout))

    def forward(self, inp):
        x = self.conv_input(inp)
        for t in range(self.times):
            skip = self.norm_skip(self.skip(x)) if t == 0 else x
            y = torch.relu(getattr(self, f"norm1_{t}")(self.conv1(x)))
            y = nn.functional.conv2d(y, self.conv2.weight, stride=2 if t == 0 else 1, padding=1)
            y = torch.relu(getattr(self, f"norm2_{t}")(y))
            y = getattr(self, f"norm3_{t}")(self.conv3(y))
            x = torch.relu(y + skip)
        return x


def cornet_s(num_classes):
    return nn.Sequential(OrderedDict([
        ("V1", nn.Sequential(OrderedDict([
            ("conv1", nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)),
            ("norm1", nn.BatchNorm2d(64)),
            ("nonlin1", nn.ReLU()),
            ("pool", nn.MaxPool2d(3, stride=2, padding=1)),
            ("conv2", nn.Conv2d(64, 64, 3, padding=1, bias=False)),
            ("norm2", nn.BatchNorm2d(64)),
            ("nonlin2", nn.ReLU()),
        ]))),
        ("V2", CORblockS(64, 128, 2)),
        ("V4", CORblockS(128, 256, 4)),
        ("IT", CORblockS(256, 512, 2)),
        ("decoder", nn.Sequential(OrderedDict([
            ("avgpool", nn.AdaptiveAvgPool2d(1)),
            ("flatten", nn.Flatten()),
            ("linear", nn.Linear(512, num_classes)),
        ]))),
    ]))


def main(outdir):
    torch.set_num_threads(2)
    for i, (name, build) in enumerate([("resnet50_ibn_a", resnet50_ibn_a), ("cornet_s", cornet_s)]):
        torch.manual_seed(4321 + i)
        model = build(10)
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d)):
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.uniform_(-0.2, 0.2)
                if isinstance(m, nn.BatchNorm2d):
                    m.running_mean.uniform_(-0.2, 0.2)
                    m.running_var.uniform_(0.5, 1.5)
        _ref.save_safetensors(f"{outdir}/{name}.weights.safetensors", model.state_dict())
        x = torch.randn(2, 3, 64, 64)
        io = {"input": x}
        model.eval()
        with torch.no_grad():
            io["eval_output"] = model(x)
        model.train()
        model.double()
        with torch.no_grad():
            io["train_output"] = model(x.double())
        _ref.save_safetensors(f"{outdir}/{name}.io.safetensors", io)


if __name__ == "__main__":
    main(sys.argv[1])

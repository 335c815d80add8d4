#!/usr/bin/env python3
"""PyTorch twins of resnest50, ghostnet, proxylessnas and midas for
tests/models/test_others_torch.cpp.

None of the four is in torchvision, so this script writes each one down in
PyTorch from its authors' definition (zhanghang1989/ResNeSt resnest50,
huawei-noah ghostnet_pytorch, mit-han-lab/proxylessnas proxyless_mobile with
the block list of osmr/imgclsmob, isl-org/MiDaS MidasNet on torchvision's
resnext101_32x8d), with the authors' module names, so that their state dicts
load into the neurn models unchanged. Random weights and BN statistics, float64
throughout (no ReLU or pooling tie can flip); it saves per model
NAME.weights.safetensors and NAME.io.safetensors: input, eval_output, and a
training step's train_output, projection R and grad.KEY of every parameter
for L = sum(train_output * R).

usage: others_torch_reference.py OUTDIR
"""
import json
import math
import struct
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

ST_DTYPES = {torch.float32: "F32", torch.float64: "F64", torch.int64: "I64"}


def save_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        data = t.detach().contiguous().cpu().numpy().tobytes()
        header[name] = {"dtype": ST_DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


# ---- ResNeSt-50 ------------------------------------------------------------------------------------------

class SplAt(nn.Module):
    def __init__(self, cin, ch, stride, radix=2, card=1):
        super().__init__()
        inter = max(cin * radix // 4, 32)
        self.radix, self.card = radix, card
        self.conv = nn.Conv2d(cin, ch * radix, 3, stride, 1, groups=card * radix, bias=False)
        self.bn0 = nn.BatchNorm2d(ch * radix)
        self.relu = nn.ReLU(inplace=True)
        self.fc1 = nn.Conv2d(ch, inter, 1, groups=card)
        self.bn1 = nn.BatchNorm2d(inter)
        self.fc2 = nn.Conv2d(inter, ch * radix, 1, groups=card)

    def forward(self, x):
        x = self.relu(self.bn0(self.conv(x)))
        n, rc = x.shape[:2]
        splits = torch.split(x, rc // self.radix, dim=1)
        gap = F.adaptive_avg_pool2d(sum(splits), 1)
        att = self.fc2(self.relu(self.bn1(self.fc1(gap))))
        att = att.view(n, self.card, self.radix, -1).transpose(1, 2)
        att = F.softmax(att, dim=1).reshape(n, -1, 1, 1)
        return sum(a * s for a, s in zip(torch.split(att, rc // self.radix, dim=1), splits))


class NestBottleneck(nn.Module):
    def __init__(self, cin, planes, stride, down):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.avd = stride > 1
        if self.avd:
            self.avd_layer = nn.AvgPool2d(3, stride, padding=1)
        self.conv2 = SplAt(planes, planes, 1)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if down:
            self.downsample = nn.Sequential(nn.AvgPool2d(stride, stride, ceil_mode=True, count_include_pad=False),
                                            nn.Conv2d(cin, planes * 4, 1, bias=False), nn.BatchNorm2d(planes * 4))

    def forward(self, x):
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.conv2(y)
        if self.avd:
            y = self.avd_layer(y)
        y = self.bn3(self.conv3(y))
        return self.relu(y + (self.downsample(x) if self.downsample is not None else x))


class ResNeSt(nn.Module):
    def __init__(self, classes):
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(3, 32, 3, 2, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU(inplace=True),
                                   nn.Conv2d(32, 32, 3, 1, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU(inplace=True),
                                   nn.Conv2d(32, 64, 3, 1, 1, bias=False))
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = 64
        for i, (n, planes) in enumerate(zip([3, 4, 6, 3], [64, 128, 256, 512])):
            blocks = []
            for b in range(n):
                stride = 2 if b == 0 and i > 0 else 1
                blocks.append(NestBottleneck(cin, planes, stride, b == 0))
                cin = planes * 4
            setattr(self, "layer%d" % (i + 1), nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2048, classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


# ---- GhostNet 1.0x ---------------------------------------------------------------------------------------

def make_div(v, d=4):
    n = max(d, int(v + d / 2) // d * d)
    return n + d if n < 0.9 * v else n


class GhostSE(nn.Module):
    def __init__(self, c, r):
        super().__init__()
        rd = make_div(c * r)
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.conv_reduce = nn.Conv2d(c, rd, 1)
        self.act1 = nn.ReLU(inplace=True)
        self.conv_expand = nn.Conv2d(rd, c, 1)

    def forward(self, x):
        s = self.conv_expand(self.act1(self.conv_reduce(self.avg_pool(x))))
        return x * (F.relu6(s + 3.0) / 6.0)


class GhostModule(nn.Module):
    def __init__(self, cin, out, relu):
        super().__init__()
        self.out = out
        init = math.ceil(out / 2)
        act = (lambda: nn.ReLU(inplace=True)) if relu else nn.Sequential
        self.primary_conv = nn.Sequential(nn.Conv2d(cin, init, 1, bias=False), nn.BatchNorm2d(init), act())
        self.cheap_operation = nn.Sequential(nn.Conv2d(init, init, 3, 1, 1, groups=init, bias=False),
                                             nn.BatchNorm2d(init), act())

    def forward(self, x):
        a = self.primary_conv(x)
        return torch.cat([a, self.cheap_operation(a)], 1)[:, :self.out]


class GhostBottleneck(nn.Module):
    def __init__(self, cin, mid, out, k, s, se):
        super().__init__()
        self.s = s
        self.ghost1 = GhostModule(cin, mid, True)
        if s > 1:
            self.conv_dw = nn.Conv2d(mid, mid, k, s, (k - 1) // 2, groups=mid, bias=False)
            self.bn_dw = nn.BatchNorm2d(mid)
        self.se = GhostSE(mid, se) if se > 0 else None
        self.ghost2 = GhostModule(mid, out, False)
        if cin == out and s == 1:
            self.shortcut = nn.Sequential()
        else:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cin, k, s, (k - 1) // 2, groups=cin, bias=False),
                                          nn.BatchNorm2d(cin), nn.Conv2d(cin, out, 1, bias=False), nn.BatchNorm2d(out))

    def forward(self, x):
        y = self.ghost1(x)
        if self.s > 1:
            y = self.bn_dw(self.conv_dw(y))
        if self.se is not None:
            y = self.se(y)
        return self.ghost2(y) + self.shortcut(x)


GHOST_CFGS = [[[3, 16, 16, 0, 1]], [[3, 48, 24, 0, 2]], [[3, 72, 24, 0, 1]], [[5, 72, 40, 0.25, 2]],
              [[5, 120, 40, 0.25, 1]], [[3, 240, 80, 0, 2]],
              [[3, 200, 80, 0, 1], [3, 184, 80, 0, 1], [3, 184, 80, 0, 1], [3, 480, 112, 0.25, 1],
               [3, 672, 112, 0.25, 1]],
              [[5, 672, 160, 0.25, 2]],
              [[5, 960, 160, 0, 1], [5, 960, 160, 0.25, 1], [5, 960, 160, 0, 1], [5, 960, 160, 0.25, 1]]]


class ConvBnAct(nn.Module):
    def __init__(self, cin, out):
        super().__init__()
        self.conv = nn.Conv2d(cin, out, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out)
        self.act1 = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.act1(self.bn1(self.conv(x)))


class GhostNet(nn.Module):
    def __init__(self, classes):
        super().__init__()
        self.conv_stem = nn.Conv2d(3, 16, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.act1 = nn.ReLU(inplace=True)
        cin, stages = 16, []
        for cfg in GHOST_CFGS:
            layers = []
            for k, e, c, se, s in cfg:
                layers.append(GhostBottleneck(cin, make_div(e), make_div(c), k, s, se))
                cin = make_div(c)
            stages.append(nn.Sequential(*layers))
        stages.append(nn.Sequential(ConvBnAct(cin, 960)))
        self.blocks = nn.Sequential(*stages)
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.conv_head = nn.Conv2d(960, 1280, 1)
        self.act2 = nn.ReLU(inplace=True)
        self.classifier = nn.Linear(1280, classes)

    def forward(self, x):
        x = self.blocks(self.act1(self.bn1(self.conv_stem(x))))
        x = self.act2(self.conv_head(self.global_pool(x)))
        return self.classifier(x.view(x.size(0), -1))  # dropout: off in eval


# ---- ProxylessNAS mobile ---------------------------------------------------------------------------------

def conv_bn(cin, out, k, s, g, act):
    m = nn.Sequential()
    m.add_module("conv", nn.Conv2d(cin, out, k, s, k // 2, groups=g, bias=False))
    m.add_module("bn", nn.BatchNorm2d(out, eps=1e-3))
    if act:
        m.add_module("act", nn.ReLU6(inplace=True))
    return m


class MBConv(nn.Module):
    def __init__(self, cin, out, k, s, e):
        super().__init__()
        mid = cin * e
        self.inverted_bottleneck = conv_bn(cin, mid, 1, 1, 1, True) if e > 1 else None
        self.depth_conv = conv_bn(mid, mid, k, s, mid, True)
        self.point_linear = conv_bn(mid, out, 1, 1, 1, False)

    def forward(self, x):
        if self.inverted_bottleneck is not None:
            x = self.inverted_bottleneck(x)
        return self.point_linear(self.depth_conv(x))


class MBBlock(nn.Module):
    def __init__(self, conv, shortcut):
        super().__init__()
        self.mobile_inverted_conv, self.shortcut = conv, shortcut

    def forward(self, x):
        if self.mobile_inverted_conv is None:
            return x
        y = self.mobile_inverted_conv(x)
        return y + x if self.shortcut else y


PROXYLESS_MOBILE = [([1], [16], [3], [1]),
                    ([1, 1, 0, 0], [32] * 4, [5, 3, 3, 3], [3] * 4),
                    ([1, 1, 1, 1], [40] * 4, [7, 3, 5, 5], [3] * 4),
                    ([1] * 8, [80] * 4 + [96] * 4, [7] + [5] * 7, [6, 3, 3, 3, 6, 3, 3, 3]),
                    ([1] * 5, [192] * 4 + [320], [7] * 5, [6, 6, 3, 3, 6])]


class Proxyless(nn.Module):
    def __init__(self, classes):
        super().__init__()
        self.first_conv = conv_bn(3, 32, 3, 2, 1, True)
        blocks, cin = [], 32
        for i, (body, chans, ks, es) in enumerate(PROXYLESS_MOBILE):
            for j, c in enumerate(chans):
                s = 2 if j == 0 and i > 0 else 1
                blocks.append(MBBlock(MBConv(cin, c, ks[j], s, es[j]) if body[j] else None, j > 0 and cin == c))
                cin = c
        self.blocks = nn.ModuleList(blocks)
        self.feature_mix_layer = conv_bn(cin, 1280, 1, 1, 1, True)
        self.classifier = nn.Sequential()
        self.classifier.add_module("linear", nn.Linear(1280, classes))

    def forward(self, x):
        x = self.first_conv(x)
        for b in self.blocks:
            x = b(x)
        x = self.feature_mix_layer(x).mean(3).mean(2)
        return self.classifier(x)


# ---- MiDaS v2.1 large ------------------------------------------------------------------------------------

class RCU(nn.Module):
    def __init__(self, f):
        super().__init__()
        self.conv1 = nn.Conv2d(f, f, 3, 1, 1, bias=True)
        self.conv2 = nn.Conv2d(f, f, 3, 1, 1, bias=True)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        out = self.relu(x)  # in place, as the authors': x becomes relu(x)
        out = self.conv2(self.relu(self.conv1(out)))
        return out + x


class Fusion(nn.Module):
    def __init__(self, f):
        super().__init__()
        self.resConfUnit1 = RCU(f)
        self.resConfUnit2 = RCU(f)

    def forward(self, *xs):
        out = xs[0]
        if len(xs) == 2:
            out = out + self.resConfUnit1(xs[1])
        out = self.resConfUnit2(out)
        return F.interpolate(out, scale_factor=2, mode="bilinear", align_corners=True)


class Interpolate(nn.Module):
    def forward(self, x):
        return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


class Midas(nn.Module):
    def __init__(self):
        super().__init__()
        r = torchvision.models.resnext101_32x8d()
        self.pretrained = nn.Module()
        self.pretrained.layer1 = nn.Sequential(r.conv1, r.bn1, r.relu, r.maxpool, r.layer1)
        self.pretrained.layer2, self.pretrained.layer3, self.pretrained.layer4 = r.layer2, r.layer3, r.layer4
        self.scratch = nn.Module()
        for i, c in enumerate([256, 512, 1024, 2048]):
            setattr(self.scratch, "layer%d_rn" % (i + 1), nn.Conv2d(c, 256, 3, 1, 1, bias=False))
        for i in [4, 3, 2, 1]:
            setattr(self.scratch, "refinenet%d" % i, Fusion(256))
        self.scratch.output_conv = nn.Sequential(nn.Conv2d(256, 128, 3, 1, 1), Interpolate(),
                                                 nn.Conv2d(128, 32, 3, 1, 1), nn.ReLU(True),
                                                 nn.Conv2d(32, 1, 1, 1, 0), nn.ReLU(True))

    def forward(self, x):
        p, s = self.pretrained, self.scratch
        l1 = p.layer1(x)
        l2 = p.layer2(l1)
        l3 = p.layer3(l2)
        l4 = p.layer4(l3)
        y = s.refinenet4(s.layer4_rn(l4))
        y = s.refinenet3(y, s.layer3_rn(l3))
        y = s.refinenet2(y, s.layer2_rn(l2))
        y = s.refinenet1(y, s.layer1_rn(l1))
        return s.output_conv(y)  # (N, 1, H, W): the authors squeeze the channel afterwards


MODELS = {"resnest50": lambda: ResNeSt(10), "ghostnet": lambda: GhostNet(10), "proxylessnas": lambda: Proxyless(10),
          "midas": Midas}


def main(outdir):
    torch.set_default_dtype(torch.float64)
    for i, (name, build) in enumerate(MODELS.items()):
        torch.manual_seed(4321 + i)
        model = build()
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.uniform_(-0.2, 0.2)
                    m.running_mean.uniform_(-0.2, 0.2)
                    m.running_var.uniform_(0.5, 1.5)
                    m.num_batches_tracked.fill_(5)
                elif isinstance(m, nn.Conv2d) and m.bias is not None:
                    m.bias.uniform_(-0.2, 0.2)  # the default init is small; make the biases matter
        model.eval()
        x = torch.randn(2, 3, 64, 64)
        with torch.no_grad():
            y = model(x)
        weights = {k: v.clone() for k, v in model.state_dict().items()}
        io = {"input": x, "eval_output": y}
        # A training step (batch statistics): L = sum(output * R); every parameter's gradient.
        model.train()
        yt = model(x)
        r = torch.randn(yt.shape)
        (yt * r).sum().backward()
        io.update({"train_output": yt, "projection": r})
        for k, p in model.named_parameters():
            if p.grad is not None:  # MiDaS's refinenet4.resConfUnit1 is never called
                io["grad." + k] = p.grad
        save_safetensors("%s/%s.weights.safetensors" % (outdir, name), weights)
        save_safetensors("%s/%s.io.safetensors" % (outdir, name), io)
        print(name, tuple(y.shape), sum(p.numel() for p in model.parameters()))


if __name__ == "__main__":
    main(sys.argv[1])

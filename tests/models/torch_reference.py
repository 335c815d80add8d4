#!/usr/bin/python3
"""Reference data from torchvision for the neurn model tests (run only where
Debian's python3-torch and python3-torchvision are installed).

  torch_reference.py keys OUT.txt
      the state-dict keys and shapes of the torchvision models in MODELS
      at 1000 classes (tests/models/torchvision_keys.txt
      was made this way and is checked in, so the key test runs without torch)
  torch_reference.py reference OUTDIR [MODEL ...]
      per model, random weights (BN statistics randomised too) as
      OUTDIR/MODEL.weights.safetensors, and OUTDIR/MODEL.io.safetensors with an
      input (2, 3, S, S), the eval-mode output in float32, and one training
      step (dropout and stochastic depth off, labels [1, 7], cross-entropy):
      its output, loss, every parameter's gradient (the first 65536 values and the norm for tensors over
      4M elements) and the BN running statistics after the step.
      S = INPUT_SIZE (64, or 32 for vgg19: at 32x32 the last stage of the BN models is 1x1
      and batch norm over 2 values makes training-mode outputs hinge on rounding).
      A model is added with a line in MODELS and INPUT_SIZE (and KWARGS
      where its constructor needs more than num_classes); for a model in
      EVAL_ONLY only the input and the eval output are written.
      The training step runs in float64 for every model (the weights and the
      input converted exactly). In float32 the gradients depend on summation
      order: at batch 2, rounding in batch norm's backward reaches 1e-1
      relative in the deep layers (torch's own float32 and float64 ResNet50
      gradients differ by 0.18), and in VGG19 a ReLU or max-pool tie that
      flips with the kernels a processor gets moves a gradient by 7e-2
      (features.14.weight on one machine). In float64 neither happens, so the
      comparison holds on every machine and tells an error from rounding.
      The eval output, continuous in the weights, stays float32.

safetensors is written with struct and json (no dependency on the package).
"""
import json
import struct
import sys

import torch
import torch.nn.functional as F
import torchvision

MODELS = ["vgg19", "resnet50", "densenet121", "mobilenet_v2", "shufflenet_v2_x1_0", "efficientnet_b0",
          "inception_v3", "vit_b_16"]
# The torchvision families of issue 20 (eval output; a float64 training step only where it is cheap)
MODELS += ["vgg11", "vgg16", "resnet101", "resnet152", "wide_resnet50_2", "resnext50_32x4d", "densenet169",
           "densenet201", "squeezenet1_0", "googlenet", "fcn_resnet101", "deeplabv3_resnet101"]
# EfficientNet B1-B7: one definition with B0 (eval output at 64x64)
MODELS += ["efficientnet_b%d" % i for i in range(1, 8)]
INPUT_SIZE = {"vgg19": 32, "resnet50": 64, "densenet121": 64, "mobilenet_v2": 64, "shufflenet_v2_x1_0": 64,
              "efficientnet_b0": 64,
              # at least 75; at 107 Mixed_7's maps are 2x2, so training BN sees 8 values, not 2
              "inception_v3": 107,
              # made at 224 (the keys, the weights file), run at 32: see resample_vit
              "vit_b_16": 32}
INPUT_SIZE.update({"vgg11": 32, "vgg16": 32, "resnet101": 64, "resnet152": 64, "wide_resnet50_2": 64,
                   "resnext50_32x4d": 64, "densenet169": 64, "densenet201": 64, "squeezenet1_0": 64,
                   "googlenet": 64,
                   # output stride 8: 8x8 maps in layer3/4 and the heads
                   "fcn_resnet101": 64, "deeplabv3_resnet101": 64})
INPUT_SIZE.update({"efficientnet_b%d" % i: 64 for i in range(1, 8)})
# Constructor arguments beyond num_classes (the keys and the reference use them).
KWARGS = {"inception_v3": {"aux_logits": False, "transform_input": False, "init_weights": True}}
KWARGS["googlenet"] = {"aux_logits": False, "transform_input": False, "init_weights": True}
# with the auxiliary head, as the pretrained weights; no ImageNet backbone download
KWARGS["fcn_resnet101"] = {"aux_loss": True, "weights_backbone": None}
KWARGS["deeplabv3_resnet101"] = {"aux_loss": True, "weights_backbone": None}
# Models whose reference is the eval output only (no training step): the large ones, where a float64
# step costs minutes, and the segmentation models (whose loss is not the classifier's)
EVAL_ONLY = {"vgg11", "vgg16", "resnet101", "resnet152", "wide_resnet50_2", "densenet169", "densenet201",
             "fcn_resnet101", "deeplabv3_resnet101"} | {"efficientnet_b%d" % i for i in range(1, 8)}


def constructor(name):
    """torchvision's builder of `name` (classifiers in models, the rest in models.segmentation)."""
    if hasattr(torchvision.models, name):
        return getattr(torchvision.models, name)
    return getattr(torchvision.models.segmentation, name)


def main_output(y):
    """The segmentation models return {"out": ..., "aux": ...}: the compared output is "out"."""
    return y["out"] if isinstance(y, dict) else y
# Every training step runs in float64: see the module docstring.
TRAIN_DTYPE = {name: torch.float64 for name in MODELS}
ST_DTYPES = {torch.float32: "F32", torch.float64: "F64", torch.int64: "I64"}


def save_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous().cpu()
        data = t.numpy().tobytes()
        header[name] = {"dtype": ST_DTYPES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def write_keys(out):
    with open(out, "w") as f:
        f.write("# torchvision %s state-dict keys at 1000 classes (segmentation: 21): model key shape\n"
                % torchvision.__version__)
        for name in MODELS:
            model = constructor(name)(**KWARGS.get(name, {}))
            for k, v in model.state_dict().items():
                f.write("%s %s %s\n" % (name, k, ",".join(str(d) for d in v.shape)))


def resample_vit(model, size):
    """A torchvision ViT made for 224 run at `size`: the patch grid of its
    position embedding resampled bicubically (align_corners=False), the class
    token's entry kept, as neurn's load_state adapts it (Encoder::adapt_state)."""
    pe = model.encoder.pos_embedding.data
    g, n = int(round((pe.shape[1] - 1) ** 0.5)), size // model.patch_size
    grid = F.interpolate(pe[:, 1:].reshape(1, g, g, -1).permute(0, 3, 1, 2), size=(n, n), mode="bicubic",
                         align_corners=False).permute(0, 2, 3, 1).reshape(1, n * n, -1)
    model.encoder.pos_embedding = torch.nn.Parameter(torch.cat([pe[:, :1], grid], 1))
    model.image_size = size


def write_reference(outdir, names):
    for i, name in enumerate(names):
        torch.manual_seed(1234 + i)
        model = constructor(name)(num_classes=10, **KWARGS.get(name, {}))
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.uniform_(-0.2, 0.2)
                    m.running_mean.uniform_(-0.2, 0.2)
                    m.running_var.uniform_(0.5, 1.5)
                    m.num_batches_tracked.fill_(5)
            if name.startswith("vit_"):  # torchvision zeroes the head: values, so that gradients reach the body
                model.heads.head.weight.normal_(0.0, 0.02)
        save_safetensors("%s/%s.weights.safetensors" % (outdir, name), model.state_dict())
        if name.startswith("vit_"):
            resample_vit(model, INPUT_SIZE[name])
        x = torch.randn(2, 3, INPUT_SIZE[name], INPUT_SIZE[name])
        io = {"input": x}
        model.eval()
        with torch.no_grad():
            io["eval_output"] = main_output(model(x))
        if name in EVAL_ONLY:
            save_safetensors("%s/%s.io.safetensors" % (outdir, name), io)
            continue
        model.train()
        model.to(TRAIN_DTYPE[name])
        x = x.to(TRAIN_DTYPE[name])
        for m in model.modules():
            if isinstance(m, (torch.nn.Dropout, torchvision.ops.StochasticDepth)):
                m.p = 0.0
        y = model(x)
        loss = F.cross_entropy(y, torch.tensor([1, 7]))
        loss.backward()
        io["train_output"] = y
        io["loss"] = loss.reshape(())
        for k, p in model.named_parameters():
            g = p.grad.reshape(-1)
            if g.numel() <= 4 * 1024 * 1024:
                io["grad." + k] = p.grad
            else:
                io["gradhead." + k] = g[:65536].clone()
                io["gradnorm." + k] = g.double().norm().reshape(())  # float64: 100M-term sums
        for k, b in model.named_buffers():
            if b.is_floating_point():
                io["after." + k] = b
        save_safetensors("%s/%s.io.safetensors" % (outdir, name), io)


if __name__ == "__main__":
    torch.set_num_threads(2)
    if len(sys.argv) >= 3 and sys.argv[1] == "keys":
        write_keys(sys.argv[2])
    elif len(sys.argv) >= 3 and sys.argv[1] == "reference":
        write_reference(sys.argv[2], sys.argv[3:] or MODELS)
    else:
        sys.exit(__doc__)

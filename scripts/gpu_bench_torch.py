#!/usr/bin/env python3
"""PyTorch's side of the GPU benchmark of scripts/gpu-check.sh: the training
step of `neurn bench train-step` (forward, cross entropy, backward, Adam lr
1e-3 on one fixed synthetic batch) for the same networks on the same GPU.

  gpu_bench_torch.py --models digits_convnet resnet50 ... --batch 256 --size 32
      [--steps 10] [--warmup 2] [--tf32] [--benchmark] [--bf16]

Prints one JSON object per model on its own line:
  {"model": ..., "images_per_second": ..., "peak_memory_bytes": ..., "step_ms_median": ...}
or {"model": ..., "skipped": "<why>"} for a network PyTorch has no twin of.

Float32 matches neurn's defaults: TF32 off for matmul and convolution (neurn
computes exact float32 unless NEURN_ALLOW_TF32=1) and cuDNN's heuristics
rather than its timed search (neurn: NEURN_CUDNN_BENCHMARK=1); --tf32 and
--benchmark turn them on, for comparison with those neurn settings.
"""
import argparse
import json
import os
import sys
import time

# The twins of the registry's networks: digits_convnet as in
# bench/train_step_torch.py, the backbones from torchvision. resnet50v2,
# mobilenet (v1), xception and nasnetmobile follow Keras applications and
# shufflenet is ShuffleNet v1: no torchvision model.
TORCHVISION = {"vgg19": "vgg19", "resnet50": "resnet50", "densenet121": "densenet121",
               "mobilenet_v2": "mobilenet_v2", "efficientnet_b0": "efficientnet_b0", "inception_v3": "inception_v3",
               "shufflenet_v2": "shufflenet_v2_x1_0", "vit_b_16": "vit_b_16"}
# Constructor arguments that make the twin the registry's model: Inception v3
# without its auxiliary head (neurn's default), ViT-B/16 at the benchmark's
# input size (torchvision's ViT is built for one image size).
TORCHVISION_KWARGS = {"inception_v3": lambda size: {"aux_logits": False, "init_weights": True},
                      "vit_b_16": lambda size: {"image_size": size}}


def build(torch, name, classes, size=32):
    nn = torch.nn
    if name == "digits_convnet":
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench"))
        try:
            from train_step_torch import build_torch_net
            return build_torch_net(nn)
        except ImportError:  # the same network, as that script's docstring describes it
            return nn.Sequential(nn.Conv2d(3, 64, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(64, 128, 5), nn.ReLU(),
                                 nn.MaxPool2d(2), nn.Flatten(), nn.Linear(3200, 1024), nn.ReLU(),
                                 nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 10))
    if name in TORCHVISION:
        import torchvision
        kwargs = TORCHVISION_KWARGS.get(name, lambda size: {})(size)
        return getattr(torchvision.models, TORCHVISION[name])(num_classes=classes, **kwargs)
    return None


def run(torch, name, batch, size, steps, warmup, classes, device, bf16=False):
    net = build(torch, name, classes, size)
    if net is None:
        return {"model": name, "skipped": "no PyTorch/torchvision twin"}
    dev = torch.device(device)
    cuda = dev.type == "cuda"
    torch.manual_seed(1)
    net = net.to(dev).train()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    x = torch.randn(batch, 3, size, size, device=dev)
    y = torch.randint(0, classes, (batch,), device=dev)

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=bf16):
            loss = loss_fn(net(x), y)
        loss.backward()
        opt.step()
        return loss

    for _ in range(warmup):
        step().item()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    times = []
    t0 = time.perf_counter()
    for _ in range(steps):
        s0 = time.perf_counter()
        step().item()  # waits for the step, as neurn's bench does
        times.append((time.perf_counter() - s0) * 1e3)
    total = time.perf_counter() - t0
    times.sort()
    out = {"model": name, "images_per_second": batch * steps / total,
           "peak_memory_bytes": torch.cuda.max_memory_allocated() if cuda else None,
           "step_ms_median": times[len(times) // 2], "device": str(dev)}
    del net, opt, x, y
    if cuda:
        torch.cuda.empty_cache()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", required=True)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--tf32", action="store_true")
    ap.add_argument("--benchmark", action="store_true")
    ap.add_argument("--bf16", action="store_true", help="torch.autocast to bfloat16 (neurn: NEURN_AUTOCAST_BF16=1)")
    ap.add_argument("--device", default="cuda", help="cpu: a smoke test of this script where no GPU is")
    args = ap.parse_args()
    import torch
    if args.device != "cpu" and not torch.cuda.is_available():
        print(json.dumps({"error": "torch.cuda.is_available() is False"}))
        return 1
    torch.backends.cuda.matmul.allow_tf32 = args.tf32
    torch.backends.cudnn.allow_tf32 = args.tf32
    torch.backends.cudnn.benchmark = args.benchmark
    for name in args.models:
        try:
            res = run(torch, name, args.batch, args.size, args.steps, args.warmup, args.classes, args.device,
                      args.bf16)
        except Exception as e:  # one failing model does not stop the others
            res = {"model": name, "error": f"{type(e).__name__}: {e}"}
        print(json.dumps(res), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

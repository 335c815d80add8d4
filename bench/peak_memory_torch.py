#!/usr/bin/python3
"""Peak memory of CPU training steps, PyTorch beside neurn, on the same machine.

Both sides build ResNet50 (torchvision's resnet50(num_classes=10), v1.5, the
twin of neurn's registry entry) for 3x32x32 inputs, take one synthetic batch
of 64, and run --steps steps of forward, cross entropy, backward and SGD
(lr 0.01, momentum 0.9), gradients released between steps
(zero_grad(set_to_none=True), as neurn's zero_grad does). Each side runs in
its own fresh process, one after the other.

What is measured, without tracemalloc (which sees only Python's own objects):
  - peak RSS: the process's resident-set high-water mark, VmHWM from
    /proc/self/status (the figure resource.getrusage(RUSAGE_SELF).ru_maxrss
    reports), and VmRSS just before the first step, so the growth caused by
    the steps can be read apart from the libraries and the model;
  - saved for backward: the bytes of the distinct storages the autograd graph
    holds once the forward is done. PyTorch: a saved_tensors_hooks pack hook
    sees every tensor a node saves (deduplicated by storage); neurn: tensor
    storage in use after the forward minus at the start of the step (its
    allocator's own count, framework/tensor.h host_memory_stats), which also
    includes the loss and the logits;
  - neurn only: its tensor allocator's peak during the step. PyTorch's CPU
    allocator keeps no such count (its profiler reports memory only with
    kineto, which Debian's build lacks).

usage: /usr/bin/python3 bench/peak_memory_torch.py [--neurn build/bin/neurn]
       [--threads 2] [--steps 2] [--batch 64] [--size 32]
Needs Debian's python3-torch and python3-torchvision (run with /usr/bin/python3).
"""
import argparse
import os
import re
import subprocess
import sys


def status_kb(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return -1


def storage_of(t):
    return t.untyped_storage() if hasattr(t, "untyped_storage") else t._storage()


def torch_side(args):
    import torch
    import torchvision
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    net = torchvision.models.resnet50(num_classes=10)
    net.train()
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    x = torch.randn(args.batch, 3, args.size, args.size)
    y = torch.randint(0, 10, (args.batch,))
    existing = {storage_of(t).data_ptr() for t in list(net.parameters()) + list(net.buffers()) + [x, y]}
    rss_before = status_kb("VmRSS")
    print(f"torch {torch.__version__}, resnet50, batch {args.batch}, {args.size}x{args.size}, "
          f"{args.steps} SGD steps (momentum 0.9), {args.threads} threads")
    for i in range(args.steps):
        opt.zero_grad(set_to_none=True)
        saved = {}

        def pack(t):
            s = storage_of(t)
            if s.data_ptr() not in existing:  # weights and the input were there before the step
                saved[s.data_ptr()] = s.nbytes()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            loss = loss_fn(net(x), y)
        kept = sum(saved.values())
        loss.backward()
        opt.step()
        print(f"step {i}: loss {loss.item():.4f}; {kept / 2**20:.1f} MiB saved for backward "
              f"({len(saved)} storages)")
    hwm = status_kb("VmHWM")
    print(f"process: VmRSS {rss_before / 1024:.1f} MiB before the first step, peak VmHWM {hwm / 1024:.1f} MiB "
          f"({(hwm - rss_before) / 1024:.1f} MiB above)")
    print(f"saved_bytes={kept}")
    print(f"peak_rss_kb={hwm}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--neurn", default="build/bin/neurn")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--torch-side", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.torch_side:
        torch_side(args)
        return
    common = ["--steps", str(args.steps), "--batch", str(args.batch), "--size", str(args.size)]
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(args.threads), NEURN_NUM_THREADS=str(args.threads),
               OMP_NUM_THREADS=str(args.threads))
    out = {}
    for side, cmd in (("neurn", [args.neurn, "bench", "peak-memory", "--model", "resnet50", "--batch-size",
                                 str(args.batch), "--image-size", str(args.size), "--steps", str(args.steps)]),
                      ("pytorch", [sys.executable, os.path.abspath(__file__), "--torch-side",
                                   "--threads", str(args.threads)] + common)):
        r = subprocess.run(cmd, env=env, capture_output=True, text=True)
        sys.stdout.write(f"--- {side}\n{r.stdout}")
        if r.returncode != 0:
            sys.stderr.write(r.stderr)
            sys.exit(f"{side} failed with exit status {r.returncode}")
        out[side] = r.stdout
    n_rss = int(re.search(r"peak_rss_kb=(\d+)", out["neurn"]).group(1))
    t_rss = int(re.search(r"peak_rss_kb=(\d+)", out["pytorch"]).group(1))
    above = {s: float(re.search(r"\(([-\d.]+) MiB above\)", o).group(1)) for s, o in out.items()}
    kept_n = re.findall(r"\(([-\d.]+) MiB kept for backward\)", out["neurn"])[-1]
    kept_t = int(re.search(r"saved_bytes=(\d+)", out["pytorch"]).group(1)) / 2**20
    print("--- side by side (MiB)")
    print(f"peak RSS:            neurn {n_rss / 1024:8.1f}   pytorch {t_rss / 1024:8.1f}")
    print(f"RSS growth in steps: neurn {above['neurn']:8.1f}   pytorch {above['pytorch']:8.1f}")
    print(f"saved for backward:  neurn {float(kept_n):8.1f}   pytorch {kept_t:8.1f}")


if __name__ == "__main__":
    main()

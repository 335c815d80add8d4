#!/usr/bin/python3
"""Training-step throughput of the digits ConvNet in PyTorch and in neurn, on
the same CPU with the same number of threads, and their ratio.

The network (conv5x5-64, ReLU, maxpool2, conv5x5-128, ReLU, maxpool2,
fc 3200-1024, ReLU, fc 1024-1024, ReLU, fc 1024-10 on 3x32x32 inputs), the
optimizer (Adam, lr 1e-3) and the loss (cross entropy) match
`neurn bench train-step --model digits_convnet`; both time steps on one fixed
synthetic batch after a warm-up. Each side runs --repeats times, alternating,
and the best run of each counts (the machine may be shared).

usage: /usr/bin/python3 bench/train_step_torch.py [--batch 64 128] [--steps 20]
       [--threads 2] [--neurn build/bin/neurn]
Needs Debian's python3-torch (run with /usr/bin/python3).
"""
import argparse
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import blas_core_env  # noqa: E402


def build_torch_net(nn):
    return nn.Sequential(
        nn.Conv2d(3, 64, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(3200, 1024), nn.ReLU(),
        nn.Linear(1024, 1024), nn.ReLU(),
        nn.Linear(1024, 10))


def torch_images_per_second(torch, batch, steps, warmup):
    torch.manual_seed(1)
    net = build_torch_net(torch.nn)
    net.train()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    x = torch.randn(batch, 3, 32, 32)
    y = torch.randint(0, 10, (batch,))

    def step():
        opt.zero_grad()
        loss = loss_fn(net(x), y)
        loss.backward()
        opt.step()
        return loss

    for _ in range(warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return batch * steps / (time.perf_counter() - t0)


def neurn_images_per_second(binary, batch, steps, warmup, threads):
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), NEURN_NUM_THREADS=str(threads))
    cmd = [binary, "bench", "train-step", "--model", "digits_convnet", "--batch-size", str(batch), "--steps", str(steps),
           "--warmup", str(warmup)]
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    last = out.strip().splitlines()[-1]
    m = re.fullmatch(r"images_per_second=([0-9.]+)", last)
    if not m:
        sys.exit(f"unexpected last line from {' '.join(cmd)}: {last!r}")
    return float(m.group(1))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, nargs="+", default=[64, 128])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--neurn", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "build", "bin",
                                                    "neurn"))
    blas_core_env.add_argument(ap)
    args = ap.parse_args()
    blas_core_env.apply(args)
    try:
        import torch
    except ImportError:
        sys.exit("PyTorch is not installed: apt-get install python3-torch, then run with /usr/bin/python3")
    if not os.path.exists(args.neurn):
        sys.exit(f"neurn binary not found at {args.neurn} (build it with `make` or pass --neurn)")
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads; neurn {os.path.abspath(args.neurn)}; "
          f"{args.steps} steps after {args.warmup} warm-up, best of {args.repeats}")
    for batch in args.batch:
        t_best, n_best = 0.0, 0.0
        for _ in range(args.repeats):
            t_best = max(t_best, torch_images_per_second(torch, batch, args.steps, args.warmup))
            n_best = max(n_best, neurn_images_per_second(args.neurn, batch, args.steps, args.warmup, args.threads))
        print(f"batch {batch}: pytorch {t_best:.1f} images/s, neurn {n_best:.1f} images/s, "
              f"ratio neurn/pytorch = {n_best / t_best:.2f}")


if __name__ == "__main__":
    main()

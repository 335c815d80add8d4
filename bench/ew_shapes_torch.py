#!/usr/bin/env python3
"""The cases of `neurn bench ew-shapes` (relu, add and concat at DenseNet121 /
ResNet50 / Inception v3 shapes, batch 64 float32) in PyTorch, beside neurn's
figures when --neurn is given:

  /usr/bin/python3 bench/ew_shapes_torch.py [--threads 1] [--reps 20] [--neurn build/bin/neurn] [--filter TEXT]

As on neurn's side, the leaves' .grad is reset before every backward (as
zero_grad does in a training step), the forward records autograd, and each
figure is the best (minimum) wall time of --reps after one warm-up, with the
same thread count (torch.set_num_threads; NEURN_NUM_THREADS and
OPENBLAS_NUM_THREADS for neurn). ratio = torch / neurn: above 1 means neurn is
faster. Needs Debian's python3-torch.
"""
import argparse
import os
import re
import subprocess
import time

import torch
import torch.nn.functional as F

B = 64


def leaf(*shape):
    return torch.randn(*shape).requires_grad_()


def relu(c, h):
    x = leaf(B, c, h, h)
    return "relu (%d, %d, %d, %d)" % (B, c, h, h), [x], lambda: F.relu(x)


def add(c, h):
    a, b = leaf(B, c, h, h), leaf(B, c, h, h)
    return "add (%d, %d, %d, %d)" % (B, c, h, h), [a, b], lambda: a + b


def concat(c, h):
    a, b = leaf(B, c, h, h), leaf(B, 32, h, h)
    return "concat %d+32 (64, _, %d, %d)" % (c, h, h), [a, b], lambda: torch.cat([a, b], 1)


def cases():
    return [relu(128, 8), relu(256, 8), relu(256, 4), relu(128, 4), relu(512, 2), relu(128, 2), relu(1024, 1),
            relu(128, 1), relu(64, 35), add(256, 8), add(512, 4), add(1024, 2), add(2048, 1), concat(160, 8),
            concat(320, 4), concat(640, 2), concat(800, 1)]


def time_case(leaves, fwd, reps):
    y = fwd()
    dy = torch.randn_like(y)
    tf, tb = [], []
    for r in range(reps + 1):
        for t in leaves:
            t.grad = None
        t0 = time.perf_counter()
        y = fwd()
        t1 = time.perf_counter()
        y.backward(dy)
        t2 = time.perf_counter()
        if r:
            tf.append((t1 - t0) * 1e3)
            tb.append((t2 - t1) * 1e3)
    return min(tf), min(tb)


def neurn_figures(binary, threads, reps, filt):
    env = dict(os.environ, NEURN_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
    cmd = [binary, "bench", "ew-shapes", "--reps", str(reps)] + (["--filter", filt] if filt else [])
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    figures = {}
    for line in out.splitlines():
        m = re.match(r"case=(.*?)\s+fwd_ms=\s*([\d.]+) bwd_ms=\s*([\d.]+)", line)
        if m:
            figures[m.group(1).strip()] = (float(m.group(2)), float(m.group(3)))
        elif line.startswith("pool "):
            print("neurn " + line)
    return figures


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--neurn", default="")
    ap.add_argument("--filter", default="")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    theirs = neurn_figures(args.neurn, args.threads, args.reps, args.filter) if args.neurn else {}
    print("threads=%d, best of %d, ms (ratio = torch / neurn)" % (args.threads, args.reps))
    print("| case | torch fwd | neurn fwd | ratio | torch bwd | neurn bwd | ratio |")
    for name, leaves, fwd in cases():
        if args.filter and args.filter not in name:
            continue
        f, b = time_case(leaves, fwd, args.reps)
        if name in theirs:
            nf, nb = theirs.pop(name)
            print("| %s | %.4f | %.4f | %.2f | %.4f | %.4f | %.2f |" % (name, f, nf, f / nf, b, nb, b / nb))
        else:
            print("| %s | %.4f | - | - | %.4f | - | - |" % (name, f, b))
    for name in theirs:
        print("| %s | - (no twin here) |" % name)


if __name__ == "__main__":
    main()

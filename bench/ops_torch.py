#!/usr/bin/env python3
"""The cases of `neurn bench ops` (batch norm in training, max/avg pooling,
relu, DenseNet's concat at the backbones' shapes, batch 64 float32) in
PyTorch, beside neurn's figures when --neurn is given:

  /usr/bin/python3 bench/ops_torch.py [--threads 1] [--reps 15] [--neurn build/bin/neurn] [--filter TEXT] [--cpu]

Both sides time the forward (autograd recording, as in training) and the
backward (y.backward(dy) into leaves that require grad) separately, the best
(minimum) of --reps after one warm-up, with the same number of threads
(torch.set_num_threads; NEURN_NUM_THREADS and OPENBLAS_NUM_THREADS for neurn).
A case name neurn prints that has no twin here is reported, never dropped.
--cpu compares the process CPU time (all threads) instead of wall time: on a
loaded machine it is the steadier figure (with 1 thread it is the op's own
time; with more, torch's OpenMP threads spin a while after each region and
count it). ratio = torch / neurn: above 1 means neurn is faster. Needs Debian's
python3-torch.
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


def bn(c, h):
    x, w, b = leaf(B, c, h, h), leaf(c), leaf(c)
    rm, rv = torch.zeros(c), torch.ones(c)
    return "batch_norm (%d, %d, %d, %d)" % (B, c, h, h), lambda: F.batch_norm(x, rm, rv, w, b, True, 0.1, 1e-5)


def pool(is_max, c, h, k, s, p):
    x = leaf(B, c, h, h)
    name = "%s (%d, %d, %d, %d) k%d s%d p%d" % ("max_pool2d" if is_max else "avg_pool2d", B, c, h, h, k, s, p)
    if is_max:
        return name, lambda: F.max_pool2d(x, k, s, p)
    return name, lambda: F.avg_pool2d(x, k, s, p)


def relu(c, h):
    x = leaf(B, c, h, h)
    return "relu (%d, %d, %d, %d)" % (B, c, h, h), lambda: F.relu(x)


def concat(c0, pieces, h):
    xs = [leaf(B, c0, h, h)] + [leaf(B, 32, h, h) for _ in range(pieces)]
    return "concat %d+%dx32 (64, _, %d, %d)" % (c0, pieces, h, h), lambda: torch.cat(xs, 1)


def cases():
    return [bn(64, 16), bn(256, 8), bn(128, 4), bn(1024, 2), bn(2048, 1), bn(128, 8), bn(128, 2), bn(64, 35),
            bn(32, 37), bn(192, 3), bn(192, 15), bn(80, 17), bn(768, 7), bn(512, 4),
            pool(True, 64, 16, 3, 2, 1), pool(True, 64, 35, 3, 2, 0), pool(True, 192, 15, 3, 2, 0),
            pool(True, 288, 7, 3, 2, 0), pool(True, 64, 32, 2, 2, 0), pool(True, 64, 28, 2, 2, 0),
            pool(True, 128, 10, 2, 2, 0),
            pool(False, 192, 7, 3, 1, 1), pool(False, 768, 3, 3, 1, 1), pool(False, 128, 8, 2, 2, 0),
            relu(256, 8), relu(64, 35), concat(64, 6, 8), concat(512, 15, 2)]


def time_case(fwd, reps):
    """Best wall and process-CPU milliseconds of the forward and the backward."""
    y = fwd()
    dy = torch.randn_like(y)
    tf, tb, cf, cb = [], [], [], []
    for r in range(reps + 1):
        c0, t0 = time.process_time(), time.perf_counter()
        y = fwd()
        c1, t1 = time.process_time(), time.perf_counter()
        y.backward(dy)
        c2, t2 = time.process_time(), time.perf_counter()
        if r:
            tf.append((t1 - t0) * 1e3)
            tb.append((t2 - t1) * 1e3)
            cf.append((c1 - c0) * 1e3)
            cb.append((c2 - c1) * 1e3)
    return min(tf), min(tb), min(cf), min(cb)


def neurn_times(binary, threads, reps, filt):
    env = dict(os.environ, NEURN_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
    cmd = [binary, "bench", "ops", "--reps", str(reps)] + (["--filter", filt] if filt else [])
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError("neurn bench ops failed: %s" % (out.stderr or out.stdout)[-400:])
    res = {}
    pat = r"^case=(.*?)\s+fwd_ms=\s*([0-9.]+) bwd_ms=\s*([0-9.]+) cpu_fwd_ms=\s*([0-9.]+) cpu_bwd_ms=\s*([0-9.]+)"
    for m in re.finditer(pat, out.stdout, re.M):
        res[m.group(1)] = tuple(float(m.group(i)) for i in range(2, 6))
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--neurn", default="")
    ap.add_argument("--filter", default="")
    ap.add_argument("--cpu", action="store_true", help="compare process CPU time instead of wall time")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    ours = neurn_times(a.neurn, a.threads, a.reps, a.filter) if a.neurn else {}
    what = "process CPU time" if a.cpu else "wall time"
    print("%d threads, batch %d float32, best of %d, %s (ms); ratio = torch / neurn" % (a.threads, B, a.reps, what))
    print("| case | torch fwd | neurn fwd | ratio | torch bwd | neurn bwd | ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    k = 2 if a.cpu else 0
    seen = set()
    for name, fwd in cases():
        if a.filter and a.filter not in name:
            continue
        seen.add(name)
        t = time_case(fwd, a.reps)
        tf, tb = t[k], t[k + 1]
        if name in ours:
            nf, nb = ours[name][k], ours[name][k + 1]
            print("| %s | %.3f | %.3f | %.2f | %.3f | %.3f | %.2f |" % (name, tf, nf, tf / max(nf, 1e-9), tb, nb,
                                                                      tb / max(nb, 1e-9)))
        else:
            print("| %s | %.3f | | | %.3f | | |" % (name, tf, tb))
    for name in ours:
        if name not in seen:
            print("| %s | (no torch twin) | %.3f | | | %.3f | |" % (name, ours[name][k], ours[name][k + 1]))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The cases of `neurn bench elementwise` in PyTorch, printed beside neurn's.

Usage: bench/elementwise_torch.py [--neurn BUILD/bin/neurn] [--rows R --cols C --reps K]
Runs the neurn command (unless --neurn is empty), then the same ops in torch
(as a user calls them, so allocating their output, and with out= where torch
has it), and prints our time, torch's, the ratio torch/ours (> 1: neurn is
faster) and each one's GB/s as a fraction of the copy bandwidth neurn measured.
Threads: --threads for both (torch.set_num_threads, NEURN_NUM_THREADS), default all cores.
"""
import argparse
import os
import re
import subprocess
import time

import torch


def best_ms(reps, fn):
    """Best of reps runs after one warm-up, as `neurn bench elementwise` reports."""
    fn()
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, (time.perf_counter() - t0) * 1e3)
    return best


def run_neurn(binary, rows, cols, reps):
    out = subprocess.run([binary, "bench", "elementwise", "--rows", str(rows), "--cols", str(cols), "--reps",
                          str(reps)], check=True, capture_output=True, text=True).stdout
    res = {}
    for line in out.splitlines():
        m = re.match(r"(\S+)\s+ms=\s*([0-9.]+)", line)
        if m:
            res[m.group(1)] = float(m.group(2))
        elif line.startswith("threads="):
            print("neurn:", line)
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--neurn", default="build/bin/neurn")
    ap.add_argument("--rows", type=int, default=4096)
    ap.add_argument("--cols", type=int, default=4096)
    ap.add_argument("--reps", type=int, default=11)
    ap.add_argument("--threads", type=int, default=os.cpu_count(),
                    help="torch.set_num_threads and NEURN_NUM_THREADS (default: all cores)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    os.environ["NEURN_NUM_THREADS"] = str(a.threads)
    ours = run_neurn(a.neurn, a.rows, a.cols, a.reps) if a.neurn else {}

    torch.manual_seed(1)
    x = torch.randn(a.rows, a.cols)
    y = torch.randn(a.rows, a.cols)
    row = torch.randn(1, a.cols)
    col = torch.randn(a.rows, 1)
    o = torch.empty(a.rows, a.cols)
    b = 4.0 * a.rows * a.cols
    cases = [
        ("add", 3 * b, lambda: torch.add(x, y), lambda: torch.add(x, y, out=o)),
        ("mul", 3 * b, lambda: torch.mul(x, y), lambda: torch.mul(x, y, out=o)),
        ("relu", 2 * b, lambda: torch.relu(x), lambda: torch.clamp_min(x, 0, out=o)),
        ("add_row_broadcast", 2 * b, lambda: torch.add(x, row), lambda: torch.add(x, row, out=o)),
        ("add_col_broadcast", 2 * b, lambda: torch.add(x, col), lambda: torch.add(x, col, out=o)),
        ("sum_axis0", b, lambda: torch.sum(x, 0), None),
        ("sum_axis1", b, lambda: torch.sum(x, 1), None),
        ("sum_all", b, lambda: torch.sum(x), None),
        ("softmax_last_axis", 2 * b, lambda: torch.softmax(x, -1), None),
    ]
    bw = ours.get("memcpy_all_threads")
    bw_gbps = 2 * b / (bw * 1e-3) * 1e-9 if bw else None
    print(f"torch {torch.__version__} threads={torch.get_num_threads()}; copy bandwidth (neurn's memcpy over all "
          f"threads): {bw_gbps:.2f} GB/s" if bw_gbps else f"torch {torch.__version__}")
    print(f"{'case':22s} {'neurn ms':>9s} {'torch ms':>9s} {'torch/neurn':>11s} {'torch out= ms':>13s} "
          f"{'neurn %bw':>9s} {'torch %bw':>9s}")
    for name, nbytes, fn, fn_out in cases:
        t = best_ms(a.reps, fn)
        t_out = best_ms(a.reps, fn_out) if fn_out else float("nan")
        n = ours.get(name, float("nan"))
        frac = (lambda ms: 100 * (nbytes / (ms * 1e-3) * 1e-9) / bw_gbps) if bw_gbps else (lambda ms: float("nan"))
        print(f"{name:22s} {n:9.3f} {t:9.3f} {t / n:11.2f} {t_out:13.3f} {frac(n):8.1f}% {frac(t):8.1f}%")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The Needleman-Wunsch score of `neurn bench similarity`'s long pair, in
plain Python on the same machine: the same LCG sequences, the same scores
(match 4, mismatch -1, gap -1, gap borders), the same linear-memory recurrence.
Prints Python's cells per second, neurn's (from `neurn bench similarity`), and
the ratio; the two scores must agree.

usage: python3 bench/similarity_py.py [--neurn build/bin/neurn] [--length 2000]
"""
import argparse
import os
import re
import subprocess
import time

MASK = (1 << 64) - 1


def lcg_sequence(seed, n, alphabet):
    x, out = seed, []
    for _ in range(n):
        x = (x * 6364136223846793005 + 1442695040888963407) & MASK
        out.append((x >> 33) % alphabet)
    return out


def nw_score(a, b, match=4, mismatch=-1, gap=-1):
    row = [j * gap for j in range(len(b) + 1)]
    for i, ai in enumerate(a, 1):
        diag, left = row[0], i * gap
        row[0] = left
        for j, bj in enumerate(b, 1):
            up = row[j]
            v = diag + (match if ai == bj else mismatch)
            g = (up if up > left else left) + gap
            left = v if v > g else g
            row[j] = left
            diag = up
    return row[-1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--neurn", default=os.environ.get("NEURN_BIN", "build/bin/neurn"))
    ap.add_argument("--length", type=int, default=2000)
    args = ap.parse_args()
    a, b = lcg_sequence(1, args.length, 8), lcg_sequence(2, args.length, 8)
    t0 = time.perf_counter()
    score = nw_score(a, b)
    seconds = time.perf_counter() - t0
    py_cps = args.length * args.length / seconds
    print(f"python: score {score}, {seconds:.3f} s, {py_cps:.3g} cells/s")
    out = subprocess.run([args.neurn, "bench", "similarity", "--pair-length", str(args.length), "--reps", "3",
                          "--count", "2"], check=True, capture_output=True, text=True).stdout
    neurn_score = int(re.search(r"pair_score=(-?\d+)", out).group(1))
    neurn_cps = float(re.search(r"pair_cells_per_second=([\d.]+)", out).group(1))
    print(f"neurn:  score {neurn_score}, {neurn_cps:.3g} cells/s (one thread)")
    if neurn_score != score:
        raise SystemExit(f"the scores differ: python {score}, neurn {neurn_score}")
    print(f"ratio neurn / python: {neurn_cps / py_cps:.0f}x")


if __name__ == "__main__":
    main()

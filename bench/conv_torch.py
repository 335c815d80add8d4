#!/usr/bin/env python3
"""Each distinct conv of a model's training step in neurn and in PyTorch, per
pass, side by side.

  /usr/bin/python3 bench/conv_torch.py --model inception_v3 --image-size 75
      [--batch 64] [--threads 2] [--reps 3] [--neurn build/bin/neurn]
      [--from FILE] [--passes fwd,data,weight]

neurn's side is `neurn bench conv --model M --algo all --pass all` (its
`auto` column: what a training step runs, and its pick); with --from FILE the
saved output of such a run is read instead. PyTorch's side times the same
shapes (batch, channels, map, kernel, stride, padding) with torch's CPU
convolution: forward = F.conv2d with a bias, data = aten.convolution_backward
asking for the input's gradient only, weight = the same asking for the
weight's only (neurn's weight pass computes no bias gradient either); best of
--reps after a warm-up, wall or (--clock cpu) process CPU ms, with --threads threads and flush-to-zero on
(as `bench/backbones_cpu.py --flush-denormal`). Prints one row per conv and
pass (neurn ms, torch ms, neurn/torch) and totals weighted by how often each
conv runs in a step (the xF/D/W counts of neurn's listing). Needs Debian's
python3-torch.
"""
import argparse
import os
import re
import subprocess
import sys
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")

LINE = re.compile(r"^C=(\d+)\s+(\d+)x(\d+)\s+K=(\d+)\s+k=(\d+)x(\d+) s=(\d+) p=(\d+),(\d+)( d=\S+)?( g=(\d+))? "
                  r"x(\d+)/(\d+)/(\d+)(.*)$")
PASSES = ["fwd", "data", "weight"]


def parse(text):
    """The convs of a `neurn bench conv --model` listing: a dict per conv with
    its shape, counts and neurn's auto time and pick per pass."""
    convs = []
    for line in text.splitlines():
        m = LINE.match(line)
        if not m:
            continue
        if m.group(10):
            raise SystemExit("conv_torch.py: dilated convs are not handled: " + line)
        c = dict(C=int(m.group(1)), H=int(m.group(2)), W=int(m.group(3)), K=int(m.group(4)), kh=int(m.group(5)),
                 kw=int(m.group(6)), s=int(m.group(7)), ph=int(m.group(8)), pw=int(m.group(9)),
                 groups=int(m.group(12) or 1), counts=[int(m.group(13)), int(m.group(14)), int(m.group(15))],
                 neurn={}, pick={}, line=line)
        for part in m.group(16).split("|")[1:]:
            f = part.split()
            name = f[0]
            am = re.search(r"auto ([0-9.]+) \(([0-9.]+)\) \[(\w+)\]", part)
            if am:
                c["neurn"][name] = (float(am.group(1)), float(am.group(2)))
                c["pick"][name] = am.group(3)
        convs.append(c)
    if not convs:
        raise SystemExit("conv_torch.py: no conv lines in neurn's output:\n" + text[-800:])
    return convs


def time_best(fn, reps):
    """(best wall ms, best process CPU ms) of reps calls after a warm-up."""
    fn()
    wall = cpu = 1e300
    for _ in range(reps):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        wall = min(wall, time.perf_counter() - t0)
        cpu = min(cpu, time.process_time() - c0)
    return wall * 1e3, cpu * 1e3


def torch_times(c, batch, reps, passes):
    import torch
    import torch.nn.functional as F
    g = torch.Generator().manual_seed(1)
    x = torch.rand(batch, c["C"], c["H"], c["W"], generator=g) - 0.5
    w = torch.rand(c["K"], c["C"] // c["groups"], c["kh"], c["kw"], generator=g) - 0.5
    b = torch.rand(c["K"], generator=g) - 0.5
    stride, pad = [c["s"], c["s"]], [c["ph"], c["pw"]]
    with torch.no_grad():
        y = F.conv2d(x, w, b, stride, pad, 1, c["groups"])
    gy = torch.rand(y.shape, generator=g) - 0.5
    out = {}
    with torch.no_grad():
        if "fwd" in passes:
            out["fwd"] = time_best(lambda: F.conv2d(x, w, b, stride, pad, 1, c["groups"]), reps)
        for name, mask in (("data", [True, False, False]), ("weight", [False, True, False])):
            if name in passes:
                out[name] = time_best(lambda: torch.ops.aten.convolution_backward(
                    gy, x, w, [c["K"]], stride, pad, [1, 1], False, [0, 0], c["groups"], mask), reps)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="inception_v3")
    ap.add_argument("--image-size", type=int, default=75)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--neurn", default=os.path.join(ROOT, "build", "bin", "neurn"))
    ap.add_argument("--from", dest="from_file", help="a saved `neurn bench conv --model ... --algo all` output")
    ap.add_argument("--passes", default="fwd,data,weight")
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                    help="compare best wall times, or best process CPU times (steadier on a shared machine at "
                         "--threads 1; at 2 threads it also counts the time a waiting thread spins)")
    a = ap.parse_args()
    passes = a.passes.split(",")
    if a.from_file:
        with open(a.from_file) as f:
            text = f.read()
    else:
        env = dict(os.environ, OPENBLAS_NUM_THREADS=str(a.threads), NEURN_NUM_THREADS=str(a.threads))
        r = subprocess.run([a.neurn, "bench", "conv", "--model", a.model, "--image-size", str(a.image_size),
                            "--batch-size", str(a.batch), "--algo", "all", "--pass", "all", "--reps", str(a.reps)],
                           env=env, capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit("neurn bench conv failed: " + (r.stderr or r.stdout)[-800:])
        text = r.stdout
    convs = parse(text)

    import torch
    torch.set_num_threads(a.threads)
    torch.set_flush_denormal(True)
    print("%s at %dx%d, batch %d, %d threads, torch %s; ms %s, best of %d; ratio = neurn auto / torch"
          % (a.model, a.image_size, a.image_size, a.batch, a.threads, torch.__version__, a.clock, a.reps))
    k = 0 if a.clock == "wall" else 1
    print("%-44s %-6s %5s %10s %9s %9s %7s %9s" % ("conv", "pass", "count", "pick", "neurn", "torch", "ratio",
                                                  "excess"))
    tot_n = {p: 0.0 for p in PASSES}
    tot_t = {p: 0.0 for p in PASSES}
    rows = []
    for c in convs:
        t = torch_times(c, a.batch, a.reps, passes)
        name = "C=%d %dx%d K=%d k=%dx%d s=%d p=%d,%d" % (c["C"], c["H"], c["W"], c["K"], c["kh"], c["kw"], c["s"],
                                                       c["ph"], c["pw"])
        if c["groups"] != 1:
            name += " g=%d" % c["groups"]
        for i, p in enumerate(PASSES):
            n = c["counts"][i]
            if p not in passes or n == 0 or p not in c["neurn"]:
                continue
            nm, tm = c["neurn"][p][k], t[p][k]
            tot_n[p] += n * nm
            tot_t[p] += n * tm
            rows.append((n * (nm - tm), name, p))
            print("%-44s %-6s %5d %10s %9.3f %9.3f %7.2f %9.2f" % (name, p, n, c["pick"][p], nm, tm, nm / tm,
                                                                   n * (nm - tm)))
    print("totals (each conv times its count; excess = count x (neurn - torch) ms):")
    for p in PASSES:
        if p in passes and tot_t[p] > 0:
            print("  %-6s neurn %9.2f torch %9.2f ratio %.2f" % (p, tot_n[p], tot_t[p], tot_n[p] / tot_t[p]))
    sn, st = sum(tot_n.values()), sum(tot_t.values())
    print("  all    neurn %9.2f torch %9.2f ratio %.2f" % (sn, st, sn / st))
    print("largest excess (neurn slower than torch, ms per step):")
    for ex, name, p in sorted(rows, reverse=True)[:10]:
        print("  %8.2f  %s %s" % (ex, name, p))


if __name__ == "__main__":
    sys.exit(main())

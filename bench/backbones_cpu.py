#!/usr/bin/env python3
"""Training-step throughput of the paper's twelve backbones (plus
shufflenet_v2, vit_digits and digits_convnet) in neurn and in PyTorch on the
same CPU, with the same number of threads and the same batch, and their ratio.

  /usr/bin/python3 bench/backbones_cpu.py [--models vgg19 resnet50 ...] [--batch 64]
      [--size 32] [--steps 5] [--threads 2] [--neurn build/bin/neurn] [--flush-denormal]
      [--keep-blas-core]

Each side times --steps training steps (forward, cross entropy, backward,
Adam lr 1e-3) on one fixed synthetic batch after one warm-up step: neurn
through `neurn bench train-step --model NAME --batch B --size S`, PyTorch
through the torchvision twin (scripts/gpu_bench_torch.py, run on the CPU).
S is --size, raised to the model's minimum input where it has one
(`neurn models`: inception_v3 75, xception 71), the size the trainer resizes
digits to. Models without a PyTorch twin (resnet50v2, mobilenet, xception,
nasnetmobile: Keras designs; shufflenet: ShuffleNet v1, not in torchvision)
get neurn's figure alone; names the registry does not hold (yet) get a
"not registered" row, never silently dropped. OPENBLAS_CORETYPE is cleared
for both sides unless --keep-blas-core (bench/blas_core_env.py). Needs Debian's python3-torch
and python3-torchvision.
"""
import argparse
import os
import re
import subprocess
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, os.path.join(ROOT, "scripts"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import blas_core_env  # noqa: E402


# The twelve backbones of the paper (Table 1), in the registry's names.
PAPER_BACKBONES = ["vgg19", "resnet50", "resnet50v2", "densenet121", "mobilenet", "mobilenet_v2", "efficientnet_b0",
                   "xception", "inception_v3", "shufflenet", "nasnetmobile", "vit_b_16"]


def registry(binary):
    """name -> minimum input size, from `neurn models`."""
    out = subprocess.run([binary, "models"], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError("%s models failed: %s" % (binary, (out.stderr or out.stdout)[-400:]))
    mins = {}
    # name, family and task (either may hold spaces: "ViT (NAS)"), then the
    # minimum input size: the first field that is a number.
    for line in out.stdout.splitlines()[1:]:
        f = line.split()
        sizes = [x for x in f[1:] if x.isdigit()]
        if f and sizes:
            mins[f[0]] = int(sizes[0])
    return mins


def neurn_ips(binary, model, batch, size, steps, threads):
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), NEURN_NUM_THREADS=str(threads))
    out = subprocess.run([binary, "bench", "train-step", "--model", model, "--batch-size", str(batch), "--image-size", str(size),
                          "--steps", str(steps), "--warmup", "1"], env=env, capture_output=True, text=True)
    m = re.search(r"^images_per_second=([0-9.eE+-]+)", out.stdout, re.M)
    if not m:
        raise RuntimeError("neurn bench train-step --model %s failed: %s" % (model, (out.stderr or out.stdout)[-400:]))
    return float(m.group(1))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=PAPER_BACKBONES + ["shufflenet_v2", "vit_digits", "digits_convnet"])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--neurn", default=os.path.join(ROOT, "build", "bin", "neurn"))
    ap.add_argument("--flush-denormal", action="store_true",
                    help="PyTorch flushes subnormals too (torch.set_flush_denormal(True)), as neurn's conv2d and "
                         "GEMMs always do (framework/ops/denormals_cpu.h); without it PyTorch keeps its default")
    blas_core_env.add_argument(ap)
    a = ap.parse_args()
    blas_core_env.apply(a)
    import torch
    import gpu_bench_torch
    torch.set_num_threads(a.threads)
    if a.flush_denormal and not torch.set_flush_denormal(True):
        sys.exit("--flush-denormal: this CPU has no flush-to-zero mode PyTorch can set")
    print("batch %d, %dx%d, %d threads, %d steps after 1 warm-up (images/s)%s" % (
        a.batch, a.size, a.size, a.threads, a.steps, ", PyTorch flushing subnormals" if a.flush_denormal else ""))
    print("| model | neurn | PyTorch | neurn / PyTorch |")
    print("|---|---:|---:|---:|")
    mins = registry(a.neurn)
    for m in a.models:
        if m not in mins:
            print("| %s | not registered | | |" % m, flush=True)
            continue
        size = max(a.size, mins[m])
        n = neurn_ips(a.neurn, m, a.batch, size, a.steps, a.threads)
        r = gpu_bench_torch.run(torch, m, a.batch, size, a.steps, 1, 10, "cpu")
        t = r.get("images_per_second")
        ratio = "%.2f" % (n / t) if t else "n/a"
        label = m if size == a.size else "%s (%dx%d)" % (m, size, size)
        print("| %s | %.1f | %s | %s |" % (label, n, "%.1f" % t if t else "no twin", ratio), flush=True)

if __name__ == "__main__":
    main()

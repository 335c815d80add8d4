#!/usr/bin/python3
"""NeuRN forward + backward in PyTorch and in neurn, on the same CPU with the
same number of threads, and their ratio.

The PyTorch side is the straightforward composition the paper's description
suggests (valid padding: avg_pool2d with count_include_pad=False; image
scope):
    m  = avg_pool2d(x,   k, 1, k//2, count_include_pad=False)
    m2 = avg_pool2d(x*x, k, 1, k//2, count_include_pad=False)
    sigma = sqrt(clamp(m2 - m*m, min=0))
    out = sigma / (amax(sigma, dim=(1, 2, 3), keepdim=True) + eps)
then out.backward(g) for a fixed random g. neurn runs
`neurn bench neurn` with the same sizes. It also checks once that both give
the same output on a small batch (through a temporary safetensors file when
`neurn forward` is available). Each side runs --repeats times, alternating,
and the best run of each counts (the machine may be shared).

usage: /usr/bin/python3 bench/neurn_torch.py [--size 32] [--batch 256] [--channels 3]
       [--k 3 5 7 15 31] [--threads N] [--repeats 3] [--neurn build/bin/neurn]
Needs Debian's python3-torch (run with /usr/bin/python3).
"""
import argparse
import os
import re
import subprocess
import sys
import time


def torch_neurn(torch, x, k, eps=1e-6):
    F = torch.nn.functional
    m = F.avg_pool2d(x, k, 1, k // 2, count_include_pad=False)
    m2 = F.avg_pool2d(x * x, k, 1, k // 2, count_include_pad=False)
    sigma = torch.sqrt(torch.clamp(m2 - m * m, min=0))
    return sigma / (torch.amax(sigma, dim=(1, 2, 3), keepdim=True) + eps)


def torch_images_per_second(torch, batch, channels, size, k, min_seconds):
    gen = torch.Generator().manual_seed(1)
    x0 = torch.rand(batch, channels, size, size, generator=gen)
    g = torch.randn(batch, channels, size, size, generator=gen)

    def step():
        x = x0.detach().requires_grad_()
        torch_neurn(torch, x, k).backward(g)
        return x.grad

    step()
    times = []
    start = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        step()
        t1 = time.perf_counter()
        times.append(t1 - t0)
        if t1 - start >= min_seconds and len(times) >= 3:
            break
    times.sort()
    return batch / times[len(times) // 2]


def write_safetensors(path, name, tensor):
    import json
    import struct
    data = tensor.detach().contiguous().numpy().tobytes()
    dtype = {"torch.float32": "F32", "torch.float64": "F64"}[str(tensor.dtype)]
    header = json.dumps({name: {"dtype": dtype, "shape": list(tensor.shape), "data_offsets": [0, len(data)]}})
    header += " " * (-len(header) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header)) + header.encode() + data)


def read_safetensors(torch, path, name):
    import json
    import struct
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    meta = json.loads(raw[8:8 + n])[name]
    b, e = meta["data_offsets"]
    dt = {"F32": torch.float32, "F64": torch.float64}[meta["dtype"]]
    buf = bytearray(raw[8 + n + b:8 + n + e])
    return torch.frombuffer(buf, dtype=dt).reshape(meta["shape"]).clone()


def check_outputs(torch, neurn, k, tmpdir):
    """neurn forward --model none against the PyTorch composition, in float64."""
    gen = torch.Generator().manual_seed(2)
    x = torch.rand(4, 3, 32, 32, generator=gen, dtype=torch.float64)
    xin, yout = os.path.join(tmpdir, "x.safetensors"), os.path.join(tmpdir, "y.safetensors")
    write_safetensors(xin, "input", x)
    r = subprocess.run([neurn, "forward", "--model", "none", "--neurn-options", f"k={k}", "--input", xin, "--output", yout],
                       capture_output=True, text=True)
    if r.returncode != 0:
        return f"k={k} check skipped: `neurn forward --model none` failed: {(r.stderr or r.stdout).strip()[:200]}"
    y = read_safetensors(torch, yout, "output")
    ref = torch_neurn(torch, x, k)
    return f"k={k} max |neurn - torch| = {float((y - ref).abs().max()):.3g} (float64, 4x3x32x32)"


def neurn_images_per_second(neurn, batch, channels, size, k, threads, min_seconds):
    env = dict(os.environ, NEURN_NUM_THREADS=str(threads))
    out = subprocess.run([neurn, "bench", "neurn", "--image-size", str(size), "--batch-size", str(batch), "--channels",
                          str(channels), "--k", str(k), "--min-seconds", str(min_seconds)],
                         env=env, check=True, capture_output=True, text=True).stdout
    m = re.findall(r"^images_per_second=([0-9.]+)$", out, re.M)
    if not m:
        sys.exit("could not find images_per_second= in the output of neurn bench neurn:\n" + out)
    return float(m[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--channels", type=int, default=3)
    ap.add_argument("--k", type=int, nargs="+", default=[3])
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--min-seconds", type=float, default=1.0)
    ap.add_argument("--neurn", default=os.path.join(os.path.dirname(__file__), "..", "build", "bin", "neurn"))
    a = ap.parse_args()
    try:
        import torch
    except ImportError:
        sys.exit("PyTorch is not installed: install Debian's python3-torch and run with /usr/bin/python3")
    if not os.path.exists(a.neurn):
        sys.exit(f"{a.neurn} not found: build neurn first (make build) or pass --neurn")
    torch.set_num_threads(a.threads)
    print(f"size={a.size} batch={a.batch} channels={a.channels} threads={a.threads} torch={torch.__version__}")
    import tempfile
    with tempfile.TemporaryDirectory() as tmpdir:
        for k in a.k:
            print(check_outputs(torch, a.neurn, k, tmpdir))
    for k in a.k:
        best_t = best_n = 0.0
        for _ in range(a.repeats):
            best_t = max(best_t, torch_images_per_second(torch, a.batch, a.channels, a.size, k, a.min_seconds))
            best_n = max(best_n, neurn_images_per_second(a.neurn, a.batch, a.channels, a.size, k, a.threads,
                                                         a.min_seconds))
        print(f"k={k} torch_images_per_second={best_t:.1f} neurn_images_per_second={best_n:.1f} "
              f"ratio={best_n / best_t:.2f}")


if __name__ == "__main__":
    main()

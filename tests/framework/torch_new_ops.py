"""PyTorch reference for tests/framework/test_conv_transpose_instance_norm.cpp.

usage: torch_new_ops.py DIR
DIR/case.txt holds the op and its integer/float options on one line; the
tensors are text files (first line the shape, second the values) written by
the C++ test. Computes in float64 the output y and the gradients of
L = sum(y * r) with respect to every input, and for instance_norm the running
statistics after the call, and writes them back as text files.
"""
import sys

import torch
import torch.nn.functional as F


def read(d, name):
    with open(f"{d}/{name}.txt") as f:
        shape = [int(v) for v in f.readline().split()]
        vals = [float(v) for v in f.readline().split()]
    return torch.tensor(vals, dtype=torch.float64).reshape(shape)


def write(d, name, t):
    t = t.detach().to(torch.float64).contiguous()
    with open(f"{d}/{name}.txt", "w") as f:
        f.write(" ".join(str(s) for s in t.shape) + "\n")
        f.write(" ".join(repr(float(v)) for v in t.reshape(-1).tolist()) + "\n")


def main(d):
    with open(f"{d}/case.txt") as f:
        words = f.readline().split()
    op = words[0]
    r = read(d, "r")
    if op == "conv_transpose2d":
        sh, sw, ph, pw, oph, opw, dh, dw, groups, has_bias = (int(v) for v in words[1:11])
        x = read(d, "x").requires_grad_()
        w = read(d, "w").requires_grad_()
        b = read(d, "b").requires_grad_() if has_bias else None
        y = F.conv_transpose2d(x, w, b, stride=(sh, sw), padding=(ph, pw), output_padding=(oph, opw),
                               groups=groups, dilation=(dh, dw))
        (y * r).sum().backward()
        write(d, "y", y)
        write(d, "dx", x.grad)
        write(d, "dw", w.grad)
        if has_bias:
            write(d, "db", b.grad)
    elif op == "instance_norm":
        use_input_stats, affine, momentum, eps = int(words[1]), int(words[2]), float(words[3]), float(words[4])
        has_running = int(words[5])
        x = read(d, "x").requires_grad_()
        w = read(d, "w").requires_grad_() if affine else None
        b = read(d, "b").requires_grad_() if affine else None
        rm, rv = (read(d, "rm"), read(d, "rv")) if has_running else (None, None)
        y = F.instance_norm(x, rm, rv, w, b, use_input_stats=bool(use_input_stats), momentum=momentum, eps=eps)
        (y * r).sum().backward()
        write(d, "y", y)
        write(d, "dx", x.grad)
        if affine:
            write(d, "dw", w.grad)
            write(d, "db", b.grad)
        if has_running:
            write(d, "rm_after", rm)
            write(d, "rv_after", rv)
    else:
        raise SystemExit(f"torch_new_ops.py: unknown op {op!r}")


if __name__ == "__main__":
    main(sys.argv[1])

"""OpenBLAS's kernel choice for the side-by-side benchmarks.

OpenBLAS reads OPENBLAS_CORETYPE once, when the library loads, and runs the
kernels it names whatever the CPU has. An environment may set it for its own
reasons (one machine this project ran on set OPENBLAS_CORETYPE=Haswell on an
AVX-512 CPU, which halved sgemm: 114-122 against 213-232 GFLOP/s on one
thread). Both sides of a comparison load OpenBLAS (neurn for every product,
PyTorch for its linear layers; PyTorch's convolutions run oneDNN, which picks
its kernels itself), so the benchmarks clear the variable before either side
loads it and let each library's own detection choose, unless --keep-blas-core.
"""
import os
import sys


def add_argument(ap):
    ap.add_argument("--keep-blas-core", action="store_true",
                    help="keep OPENBLAS_CORETYPE from the environment (default: clear it, so OpenBLAS picks the "
                         "kernels for this CPU on both sides)")


def apply(args):
    """Call before importing torch or numpy."""
    core = os.environ.get("OPENBLAS_CORETYPE")
    if core is None:
        return
    if args.keep_blas_core:
        print("OPENBLAS_CORETYPE=%s kept (--keep-blas-core)" % core, file=sys.stderr)
        return
    del os.environ["OPENBLAS_CORETYPE"]
    print("OPENBLAS_CORETYPE=%s cleared: OpenBLAS picks its kernels for this CPU on both sides "
          "(--keep-blas-core keeps it)" % core, file=sys.stderr)

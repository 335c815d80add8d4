#pragma once
// Which OpenBLAS kernels this process runs, and the fix for a CPU that
// OpenBLAS does not recognise.
//
// Debian's OpenBLAS is built with DYNAMIC_ARCH: at load time it reads the
// CPU's model and picks a kernel set. On a virtual machine that reports a
// generic model ("Intel(R) Xeon(R) Processor") it falls back to Prescott's
// SSE3 kernels although the CPU has AVX2 or AVX-512 (and on one reporting
// "AMD EPYC" it may take Haswell's AVX2 kernels on an AVX-512 CPU): measured on such a
// 2-core VM, sgemm ran at 43 GFLOP/s with them and at 278 with SkylakeX's,
// and the digits ConvNet's training step at 167 against 632 images/s. The
// choice is made before main() and only OPENBLAS_CORETYPE changes it, so the
// fix re-executes the program with that variable set.
#include <string>

namespace neurn {

struct BlasCore {
  std::string chosen;     // OpenBLAS's kernel set ("Prescott", "Haswell", "SkylakeX", ...)
  std::string suggested;  // a better set the CPU supports, or empty when the choice is fine
};
BlasCore blas_core();

// When OpenBLAS chose kernels older than AVX2 on a CPU with AVX2+FMA or
// AVX-512, or AVX2 ones (Haswell, Zen) on an AVX-512 CPU, and
// OPENBLAS_CORETYPE is unset: sets it to the suggested set (and
// NEURN_BLAS_CORE_SET to the same, so the restarted program knows the choice
// was neurn's), says so in one line on stderr, and re-executes this program
// with the same arguments (/proc/self/exe). Otherwise (or if the
// re-execution fails) it returns and nothing changes: an OPENBLAS_CORETYPE
// given by the user is kept, even where it names narrower kernels than the CPU
// has (blas_core().suggested then says which; `neurn bench` prints it).
// NEURN_KEEP_BLAS_CORE=1 turns it off. Called first by the `neurn`
// executable and the test binaries; a program of one's own may call it first
// thing in main().
void ensure_blas_kernels(int argc, char** argv);

}  // namespace neurn

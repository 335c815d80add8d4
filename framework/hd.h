#pragma once
// NEURN_HD marks math that runs on both the CPU and the GPU: element-wise
// functors are written once with it, launched by a CPU loop or a CUDA grid.
#if defined(__CUDACC__)
#define NEURN_HD __host__ __device__ __forceinline__
#else
#define NEURN_HD inline
#endif

#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "framework/error.h"

namespace neurn {

// float32 everywhere, float64 on the CPU (gradient checks), int64 for labels
// and indices; bf16/fp16 are storage types for CUDA mixed precision.
enum class DType : uint8_t { Float32, Float64, Int64, UInt8, BFloat16, Float16 };

inline size_t dtype_size(DType t) {
  switch (t) {
    case DType::Float32: return 4;
    case DType::Float64: return 8;
    case DType::Int64: return 8;
    case DType::UInt8: return 1;
    case DType::BFloat16: return 2;
    case DType::Float16: return 2;
  }
  return 0;
}

inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::Float32: return "float32";
    case DType::Float64: return "float64";
    case DType::Int64: return "int64";
    case DType::UInt8: return "uint8";
    case DType::BFloat16: return "bfloat16";
    case DType::Float16: return "float16";
  }
  return "?";
}

inline bool is_floating(DType t) { return t != DType::Int64 && t != DType::UInt8; }

template <typename T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::Float32; };
template <> struct dtype_of<double> { static constexpr DType value = DType::Float64; };
template <> struct dtype_of<int64_t> { static constexpr DType value = DType::Int64; };
template <> struct dtype_of<uint8_t> { static constexpr DType value = DType::UInt8; };

// Calls f with a value of the C++ type of a floating dtype (float or double):
//   dispatch_float(x.dtype(), "relu", [&]<typename T>(T) { kernel<T>(...); });
template <typename F>
decltype(auto) dispatch_float(DType t, const char* op, F&& f) {
  switch (t) {
    case DType::Float32: return f(float{});
    case DType::Float64: return f(double{});
    default: NEURN_FAIL(op, ": dtype ", dtype_name(t), " is not supported on the CPU (expected float32 or float64)");
  }
}

}  // namespace neurn

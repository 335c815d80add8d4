#pragma once
// Every op of the engine. Each group's header states its contract; its
// *_cpu.cpp and *_cuda.cu implement it, and the front function dispatches on
// the device of the inputs (never on a global mode).
#include "framework/autograd.h"
#include "framework/flops.h"
#include "framework/ops/activation.h"
#include "framework/ops/conv.h"
#include "framework/ops/conv_transpose.h"
#include "framework/ops/elementwise.h"
#include "framework/ops/instance_norm.h"
#include "framework/ops/linalg.h"
#include "framework/ops/loss.h"
#include "framework/ops/neurn.h"
#include "framework/ops/norm.h"
#include "framework/ops/pool.h"
#include "framework/ops/reduce.h"
#include "framework/ops/shape_ops.h"
#include "framework/random.h"
#include "framework/tensor.h"

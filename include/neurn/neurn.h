#pragma once
// neurn's public API for the common case, in one header:
//
//   #include <neurn/neurn.h>
//
// brings tensors, every op and autograd, the gradient checker, the layers
// (NeuRN, LRN and LCN among them), the model registry, the optimizers and
// schedules, the digit domains with their loader, and the experiment
// trainer. The finer headers stay includable by their path under
// include/neurn/ ("layers/conv.h", "models/similarity/needleman_wunsch.h",
// ...), as they are in the source tree.
//
// Namespaces: neurn (engine, layers, models), neurn::data (domains and the
// loader), neurn::experiments (configs, the trainer, sweeps and reports),
// neurn::similarity (the layer-sequence aligner and pattern analysis).
#include "datasets/datasets.h"
#include "datasets/transforms.h"
#include "experiments/config.h"
#include "experiments/trainer.h"
#include "framework/device.h"
#include "framework/gradcheck.h"
#include "framework/ops.h"
#include "framework/optim/optim.h"
#include "framework/serialize/safetensors.h"
#include "layers/layers.h"
#include "layers/lcn.h"
#include "layers/lrn.h"
#include "layers/neurn_layer.h"
#include "models/registry.h"

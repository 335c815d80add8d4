#pragma once
// Everything of framework/optim: optimizers, clipping, learning-rate schedules.
#include "framework/optim/adam.h"
#include "framework/optim/lr_scheduler.h"
#include "framework/optim/optimizer.h"
#include "framework/optim/sgd.h"

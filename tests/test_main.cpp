#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include "framework/device.h"

int main(int argc, char** argv) {
  doctest::Context ctx;
  ctx.applyCommandLine(argc, argv);
  int rc = ctx.run();
  return rc;
}

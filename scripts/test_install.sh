#!/usr/bin/env bash
# The installed package, tried as a user would (run by ctest; docs/library.md):
#   scripts/test_install.sh BUILD_DIR build        install into BUILD_DIR/install-test/prefix,
#                                                  check the layout, build examples/ out of tree
#   scripts/test_install.sh BUILD_DIR run EXAMPLE  run one built example
# A case that cannot run here prints "[skipped] <reason> | <case> (...)" (the
# line scripts/test_skip_summary.sh counts) and exits 77, which ctest reports
# as skipped.
set -euo pipefail
build=$(cd "${1:?build dir}" && pwd)
mode=${2:?build or run}
src=$(cd "$(dirname "$0")/.." && pwd)
work="$build/install-test"
prefix="$work/prefix"

skip() {
  echo "[skipped] $1 | install: $2 (scripts/test_install.sh)"
  exit 77
}

if [[ $mode == build ]]; then
  rm -rf "$work"
  mkdir -p "$work"
  cmake --install "$build" --prefix "$prefix" > "$work/install.log"
  echo "installed into $prefix: $(find "$prefix" -type f | wc -l) files"
  for f in include/neurn/neurn.h include/neurn/framework/tensor.h include/neurn/models/registry.h \
           include/neurn/framework/gradcheck.h lib/cmake/neurn/neurnConfig.cmake lib/cmake/neurn/neurnTargets.cmake \
           lib/pkgconfig/neurn.pc lib/libneurn_framework.a lib/libneurn_models.a bin/neurn; do
    [[ -e $prefix/$f ]] || { echo "install: $f is missing from the prefix"; exit 1; }
  done
  # what is internal stays out
  leaked=$(cd "$prefix/include/neurn" && find . -path ./framework/cuda -prune -print -o -path ./experiments/cli -prune -print \
           -o -name '*_cpu.h' -print -o -name '*.cpp' -print | head -5)
  [[ -z $leaked ]] || { echo "install: internal files were installed: $leaked"; exit 1; }
  "$prefix/bin/neurn" models > /dev/null
  # the examples, against the prefix only: no path of the source tree may
  # reach their compile lines (examples/ itself aside)
  cmake -S "$src/examples" -B "$work/examples" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" \
        > "$work/configure.log"
  if grep -F -- "-I$src" "$work/examples/build.ninja" | grep -v -F "$src/examples" > /dev/null; then
    echo "install: an example's compile line includes the source tree"; exit 1
  fi
  cmake --build "$work/examples" -j "$(nproc)"
  # and the pkg-config file, on one example
  PKG_CONFIG_PATH="$prefix/lib/pkgconfig" g++ "$src/examples/align_models/main.cpp" -o "$work/align_models_pc" \
      $(PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --cflags --libs neurn)
  "$work/align_models_pc" mobilenet mobilenet_v2
  echo "install: the package installs, the examples build out of tree (CMake and pkg-config)"
  exit 0
fi

[[ $mode == run ]] || { echo "test_install.sh: mode must be build or run, got '$mode'"; exit 2; }
example=${3:?example name}
bin="$work/examples/$example/$example"
[[ -x $bin ]] || { echo "install: $bin was not built (the install test builds it)"; exit 1; }

# A data root with MNIST: $NEURN_DATA or ./data when prepared, else the
# shared copies (MNIST and USPS are read there as they are).
data_root() {
  for r in "${NEURN_DATA:-}" "$src/data" "${NEURN_SHARED_DATA:-}" "$src/../shared/data"; do
    [[ -n $r && -e $r/mnist/t10k-images-idx3-ubyte.gz || -n $r && -e $r/mnist/t10k-images-idx3-ubyte ]] && { echo "$r"; return; }
  done
}

case $example in
  custom_op)
    "$bin"
    ;;
  align_models)
    out=$("$bin" resnet50 resnet50v2)
    echo "$out"
    grep -q "similarity index" <<< "$out"
    ;;
  custom_cnn)
    root=$(data_root)
    [[ -n $root ]] || skip "no MNIST (no prepared data root, no ../shared/data)" "$example"
    out=$("$bin" --data-root "$root" --train-images 2000 --test-images 500 --epochs 1)
    echo "$out"
    acc=$(sed -nE 's/^mnist \(source, test\): ([0-9.]+)%$/\1/p' <<< "$out")
    # 2000 images, one epoch: well above chance (10%) if training works
    awk -v a="$acc" 'BEGIN { exit !(a > 50) }' || { echo "install: custom_cnn's MNIST accuracy $acc% is not above 50%"; exit 1; }
    ;;
  classify_backbone)
    root=$(data_root)
    [[ -n $root ]] || skip "no MNIST (no prepared data root, no ../shared/data)" "$example"
    /usr/bin/python3 -c "import torch, torchvision" 2> /dev/null ||
      skip "no PyTorch (/usr/bin/python3 lacks torch or torchvision)" "$example"
    # a torchvision state dict with random values, through the documented export script
    /usr/bin/python3 -c "
import torch, torchvision
torch.manual_seed(0)
torch.save(torchvision.models.mobilenet_v2().state_dict(), '$work/mobilenet_v2_random.pth')"
    /usr/bin/python3 "$src/scripts/export_torchvision_weights.py" --model mobilenet_v2 \
        --pth "$work/mobilenet_v2_random.pth" --out "$work/mobilenet_v2_random.safetensors"
    out=$("$bin" --model mobilenet_v2 --weights "$work/mobilenet_v2_random.safetensors" --data-root "$root" --images 2 --size 96)
    echo "$out"
    grep -q "all [0-9]* tensors loaded" <<< "$out"
    [[ $(grep -c "top-5" <<< "$out") == 2 ]]
    ;;
  *)
    echo "test_install.sh: unknown example '$example'"; exit 2
    ;;
esac

#!/usr/bin/env bash
# The one-shot device check of neurn's CUDA backend, for a GPU machine (H100,
# H200) with nvcc, cmake, ninja and PyTorch and no network.
#
#   scripts/gpu-check.sh            detect, configure and build (Release,
#                                   CUDA), run every test suite on the GPU, run
#                                   the GPU training-step benchmarks beside
#                                   PyTorch, write the summary
#   scripts/gpu-check.sh --dry-run  every part that needs no GPU: detection,
#                                   configure, build (neurn and test_framework),
#                                   the CUDA tests that run without a device
#
# Options: --build-dir DIR (default build-cuda), --jobs N (default: all
# cores), --use-deps (take the libraries from .gpu-deps even where the system
# has them: tests the carried prefix), --no-bench.
# Environment: CUDNN_ROOT, CUBLAS_ROOT (else searched: /usr/local/cuda, then
# the NVIDIA wheels of python3's site-packages), PYTHON (default python3),
# OUT (where the summary goes; default ./gpu-check-out).
# Output under $OUT: summary.txt, summary.json, build.log, tests.log,
# bench.log. The whole run stays within 8 minutes: each phase checks the clock
# and what does not fit is reported as skipped.
#
# Missing Debian libraries (yaml-cpp, OpenBLAS, matio, stb, doctest, zlib,
# bzip2, pkg-config): run `scripts/gpu-deps.sh fetch` on a machine with apt,
# carry .gpu-deps/debs along, and this script unpacks them into a prefix.
set -uo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
dry_run=0
use_deps=0
bench=1
build_dir=build-cuda
jobs=$(nproc)
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) dry_run=1 ;;
    --use-deps) use_deps=1 ;;
    --no-bench) bench=0 ;;
    --build-dir) build_dir="$2"; shift ;;
    --jobs) jobs="$2"; shift ;;
    -h | --help) sed -n '2,27p' "$0"; exit 0 ;;
    *) echo "gpu-check: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

out="${OUT:-$repo/gpu-check-out}"
mkdir -p "$out"
PY="${PYTHON:-python3}"
t_start=$(date +%s)
budget=470  # seconds: 8 minutes less a margin for the summary
[ $dry_run = 1 ] && budget=3600  # a 2-core machine without a GPU builds slowly; nothing there is timed
elapsed() { echo $(($(date +%s) - t_start)); }
left() { echo $((budget - $(elapsed))); }
say() { echo "[gpu-check $(printf '%3d' "$(elapsed)")s] $*"; }

# Facts for the summary, one "key<TAB>value" per line.
facts="$out/.facts.tsv"
: >"$facts"
fact() { printf '%s\t%s\n' "$1" "$2" >>"$facts"; }
fact mode "$([ $dry_run = 1 ] && echo dry-run || echo full)"
status=ok
problems=()
problem() { problems+=("$1"); status=failed; say "PROBLEM: $1"; }

# ---- 1. what is here ---------------------------------------------------------------------

nvcc_bin=$(command -v nvcc || true)
[ -z "$nvcc_bin" ] && [ -x /usr/local/cuda/bin/nvcc ] && nvcc_bin=/usr/local/cuda/bin/nvcc
if [ -n "$nvcc_bin" ]; then
  nvcc_version=$("$nvcc_bin" --version | grep -o 'release [0-9.]*, V[0-9.]*' | head -1)
  cuda_home=$(cd "$(dirname "$nvcc_bin")/.." && pwd)
else
  nvcc_version="not found"
  cuda_home=/usr/local/cuda
fi
say "nvcc: ${nvcc_bin:-none} ($nvcc_version)"
fact nvcc "${nvcc_bin:-none} ($nvcc_version)"

gpu="none"
driver="none"
if command -v nvidia-smi >/dev/null 2>&1; then
  line=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1)
  if [ -n "$line" ]; then
    gpu=$(echo "$line" | cut -d, -f1,3 | sed 's/^ *//')
    driver=$(echo "$line" | cut -d, -f2 | tr -d ' ')
  fi
fi
say "GPU: $gpu; driver: $driver"
fact gpu "$gpu"
fact driver "$driver"

# Folders of python3's NVIDIA wheels (nvidia/cudnn, nvidia/cublas, nvidia/cu13, ...).
wheel_dirs=$("$PY" - 2>/dev/null <<'EOF'
import importlib.util, os
spec = importlib.util.find_spec("nvidia")
for p in (spec.submodule_search_locations if spec else []):
    print(p)
EOF
)

# find_root HEADER LIBGLOB [explicit root]: prints the folder holding
# include/HEADER and lib*/LIBGLOB, first from the explicit root, then the
# toolkit, then the wheels.
find_root() {
  local header="$1" libglob="$2" explicit="${3:-}" cand d
  local cands=()
  [ -n "$explicit" ] && cands+=("$explicit")
  cands+=("$cuda_home" "$cuda_home/targets/x86_64-linux" /usr/local/cuda /usr)
  for d in $wheel_dirs; do
    while IFS= read -r h; do cands+=("$(dirname "$(dirname "$h")")"); done < <(find "$d" -maxdepth 4 -name "$header" 2>/dev/null)
  done
  for cand in "${cands[@]}"; do
    [ -f "$cand/include/$header" ] || continue
    for libdir in "$cand/lib" "$cand/lib64" "$cand/lib/x86_64-linux-gnu"; do
      if ls "$libdir"/$libglob >/dev/null 2>&1; then
        echo "$cand|$libdir"
        return 0
      fi
    done
  done
  return 1
}

header_version() {  # FILE MAJOR MINOR PATCH macro names
  local f="$1"
  printf '%s.%s.%s' "$(awk -v m="$2" '$1=="#define" && $2==m {print $3}' "$f")" \
    "$(awk -v m="$3" '$1=="#define" && $2==m {print $3}' "$f")" "$(awk -v m="$4" '$1=="#define" && $2==m {print $3}' "$f")"
}

cudnn_root="" cudnn_lib="" cublas_root="" cublas_lib=""
if r=$(find_root cudnn.h 'libcudnn.so*' "${CUDNN_ROOT:-}"); then
  cudnn_root=${r%%|*}
  cudnn_lib=${r##*|}
  vh="$cudnn_root/include/cudnn_version.h"
  [ -f "$vh" ] || vh="$cudnn_root/include/cudnn.h"
  cudnn_version=$(header_version "$vh" CUDNN_MAJOR CUDNN_MINOR CUDNN_PATCHLEVEL)
  say "cuDNN $cudnn_version: headers $cudnn_root/include, libraries $cudnn_lib"
  fact cudnn "$cudnn_version at $cudnn_root"
else
  problem "cuDNN not found (set CUDNN_ROOT to a folder with include/cudnn.h and lib/libcudnn.so*)"
  fact cudnn "not found"
fi
if r=$(find_root cublas_v2.h 'libcublas.so*' "${CUBLAS_ROOT:-}"); then
  cublas_root=${r%%|*}
  cublas_lib=${r##*|}
  cublas_version=$(header_version "$cublas_root/include/cublas_api.h" CUBLAS_VER_MAJOR CUBLAS_VER_MINOR CUBLAS_VER_PATCH)
  say "cuBLAS $cublas_version: headers $cublas_root/include, libraries $cublas_lib"
  fact cublas "$cublas_version at $cublas_root"
else
  problem "cuBLAS not found (set CUBLAS_ROOT to a folder with include/cublas_v2.h and lib/libcublas.so*)"
  fact cublas "not found"
fi

torch_info=$(timeout 120 "$PY" -c 'import torch; print(torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version(), "gpu", torch.cuda.is_available())' 2>/dev/null || echo "not importable with $PY")
say "PyTorch: $torch_info"
fact torch "$torch_info"
cmake_version=$(cmake --version 2>/dev/null | head -1 || echo "cmake not found")
say "$cmake_version; ninja $(ninja --version 2>/dev/null || echo 'not found'); $(c++ --version 2>/dev/null | head -1)"
fact cmake "$cmake_version"

# ---- 2. the libraries neurn builds with -------------------------------------------------

missing=()
have_pc() { command -v pkg-config >/dev/null && pkg-config --exists "$1"; }
have_header() {
  local h
  for h in "/usr/include/$1" "/usr/local/include/$1"; do [ -f "$h" ] && return 0; done
  return 1
}
command -v pkg-config >/dev/null || missing+=("pkg-config")
for pc in yaml-cpp openblas matio; do have_pc "$pc" || missing+=("$pc"); done
have_header doctest/doctest.h || missing+=("doctest")
have_header stb/stb_image.h || missing+=("stb")
have_header zlib.h || missing+=("zlib (headers)")
have_header bzlib.h || missing+=("bzip2 (headers)")
deps_args=""
if [ ${#missing[@]} -gt 0 ] || [ $use_deps = 1 ]; then
  [ ${#missing[@]} -gt 0 ] && say "missing here: ${missing[*]}"
  if ls .gpu-deps/debs/*.deb >/dev/null 2>&1; then
    # shellcheck source=gpu-deps.sh
    source scripts/gpu-deps.sh use || problem "unpacking .gpu-deps failed"
    deps_args="${NEURN_DEPS_CMAKE_ARGS:-}"
    fact deps "from the carried prefix .gpu-deps (missing on the system: ${missing[*]:-none})"
  else
    problem "missing libraries: ${missing[*]}; on a machine with apt run scripts/gpu-deps.sh fetch, then carry .gpu-deps/debs here"
    fact deps "missing: ${missing[*]}"
  fi
else
  fact deps "all from the system"
fi

# ---- 3. configure and build -------------------------------------------------------------

built=0
if [ "$status" = ok ]; then
  cmake_args=(-S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DNEURN_CUDA=ON -DNEURN_CUDA_ARCH=90
              "-DCUDNN_ROOT=$cudnn_root" "-DCUBLAS_ROOT=$cublas_root")
  [ -n "$nvcc_bin" ] && cmake_args+=("-DCMAKE_CUDA_COMPILER=$nvcc_bin")
  # shellcheck disable=SC2206
  [ -n "$deps_args" ] && cmake_args+=($deps_args)
  targets=()
  [ $dry_run = 1 ] && targets=(neurn test_framework)
  say "configure: cmake ${cmake_args[*]}"
  export LD_LIBRARY_PATH="${cudnn_lib}:${cublas_lib}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  t0=$(elapsed)
  if cmake "${cmake_args[@]}" >"$out/build.log" 2>&1 && timeout $(($(left) - 60)) ninja -C "$build_dir" -j "$jobs" "${targets[@]}" >>"$out/build.log" 2>&1; then
    built=1
    say "built in $(($(elapsed) - t0)) s (${targets[*]:-all targets})"
    grep -h "neurn: CUDA backend" "$out/build.log" | head -1
  else
    problem "configure or build failed (see build.log)"
    grep -E "error|Error|FAILED" "$out/build.log" | head -20
  fi
  fact build_seconds "$(($(elapsed) - t0))"
fi

# ---- 4. tests ---------------------------------------------------------------------------

tests_tsv="$out/.tests.tsv"
: >"$tests_tsv"
: >"$out/tests.log"
run_suite() {  # NAME BINARY [doctest args]
  local name="$1" bin="$2"
  shift 2
  local t0 rc line
  t0=$(elapsed)
  echo "==== $name $*" >>"$out/tests.log"
  # Leave the benchmarks their share of the 8 minutes (a suite cut short is reported).
  local limit=$(($(left) - (dry_run == 1 || bench == 0 ? 20 : 150)))
  [ $limit -lt 30 ] && limit=30
  (cd "$repo" && NEURN_BIN="$repo/$build_dir/bin/neurn" timeout "$limit" "$bin" "$@") >>"$out/tests.log" 2>&1
  rc=$?
  line=$(grep '\[doctest\] test cases:' "$out/tests.log" | tail -1 | sed 's/\[doctest\] test cases: *//')
  printf '%s\t%s\t%s\t%s\n' "$name" "$rc" "$(($(elapsed) - t0))" "$line" >>"$tests_tsv"
  say "tests $name: exit $rc; $line"
  [ $rc = 0 ] || problem "test suite $name failed (exit $rc; see tests.log)"
}
if [ $built = 1 ]; then
  if [ $dry_run = 1 ]; then
    # No GPU: the CUDA cases report themselves skipped; the rest of the file runs.
    run_suite framework-cuda "$build_dir/bin/test_framework" -tc='cuda*,caching allocator*,ops given*,autocast*'
    if ! grep -q "skipped for lack of a CUDA device" "$out/tests.log"; then
      problem "the CUDA cases did not report themselves skipped"
    fi
    run_suite framework-tensor "$build_dir/bin/test_framework" -tc='tensor*,broadcasting*'
  else
    # framework first: it holds the CUDA comparisons.
    for bin in "$build_dir/bin/test_framework" $(ls "$build_dir"/bin/test_* | grep -v '/test_framework$'); do
      [ "$(left)" -gt 180 ] || { say "skipped $(basename "$bin"): out of time"; printf '%s\t-\t0\tskipped: out of time\n' "$(basename "$bin")" >>"$tests_tsv"; continue; }
      run_suite "$(basename "$bin" | sed 's/^test_//')" "$bin"
    done
    grep -q "running [0-9]* op cases on cuda" "$out/tests.log" || problem "the CUDA op table did not run on the GPU"
    # The reproducibility cases once more with the deterministic backward
    # (read once per process): their bit-for-bit checks run only then.
    if [ "$(left)" -gt 120 ]; then
      export NEURN_DETERMINISTIC=1
      run_suite framework-deterministic "$build_dir/bin/test_framework" -tc='*NEURN_DETERMINISTIC*'
      unset NEURN_DETERMINISTIC
    fi
  fi
fi

# ---- 5. benchmarks beside PyTorch ---------------------------------------------------------

bench_tsv="$out/.bench.tsv"
: >"$bench_tsv"
: >"$out/bench.log"
if [ $built = 1 ] && [ $dry_run = 0 ] && [ $bench = 1 ]; then
  models=(digits_convnet vgg19 resnet50 resnet50v2 densenet121 mobilenet mobilenet_v2 efficientnet_b0 xception
    inception_v3 shufflenet nasnetmobile vit_b_16 shufflenet_v2 vit_digits)
  for m in "${models[@]}"; do
    # 32x32, or the model's minimum input (the size the trainer resizes digits to)
    case "$m" in
      inception_v3) size=75 ;;
      xception) size=71 ;;
      *) size=32 ;;
    esac
    if [ "$(left)" -lt 45 ]; then
      say "bench $m: skipped, out of time"
      printf '%s\tskipped: out of time\t\t\t\n' "$m" >>"$bench_tsv"
      continue
    fi
    echo "==== neurn $m" >>"$out/bench.log"
    n_out=$(timeout $(($(left) - 30)) "$build_dir/bin/neurn" bench train-step --model "$m" --batch-size 256 \
      --image-size "$size" --device cuda --steps 10 --warmup 2 2>&1)
    echo "$n_out" >>"$out/bench.log"
    if echo "$n_out" | grep -q "unknown model '$m'"; then
      say "bench $m: not in the registry yet, skipped"
      printf '%s\tskipped: not in the registry\t\t\t\n' "$m" >>"$bench_tsv"
      continue
    fi
    n_ips=$(echo "$n_out" | sed -n 's/^images_per_second=//p' | tail -1)
    [ -n "$n_ips" ] || problem "neurn bench train-step --model $m failed on cuda: $(echo "$n_out" | tail -1)"
    n_mem=$(echo "$n_out" | sed -n 's/^peak_memory_bytes=//p' | tail -1)
    t_ips="" t_mem=""
    if [ "$(left)" -gt 30 ]; then
      echo "==== pytorch $m" >>"$out/bench.log"
      t_out=$(timeout $(($(left) - 20)) "$PY" scripts/gpu_bench_torch.py --models "$m" --batch 256 --size "$size" \
        --steps 10 --warmup 2 2>>"$out/bench.log")
      echo "$t_out" >>"$out/bench.log"
      t_ips=$(echo "$t_out" | "$PY" -c 'import json,sys
for l in sys.stdin:
    d = json.loads(l); print(d.get("images_per_second", ""))' 2>/dev/null | tail -1)
      t_mem=$(echo "$t_out" | "$PY" -c 'import json,sys
for l in sys.stdin:
    d = json.loads(l); print(d.get("peak_memory_bytes", ""))' 2>/dev/null | tail -1)
    fi
    label="$m"
    [ "$size" = 32 ] || label="$m (${size}x${size})"
    printf '%s\t%s\t%s\t%s\t%s\n' "$label" "${n_ips:-failed: $(echo "$n_out" | tail -1)}" "$n_mem" "$t_ips" "$t_mem" \
      >>"$bench_tsv"
    say "bench $label: neurn ${n_ips:-failed} images/s, PyTorch ${t_ips:-n/a} images/s"
  done
fi

# bf16 autocast on both sides (conv and matmul in bf16, float32 master weights).
if [ $built = 1 ] && [ $dry_run = 0 ] && [ $bench = 1 ]; then
  for m in digits_convnet resnet50; do
    if [ "$(left)" -lt 60 ]; then
      printf '%s\tskipped: out of time\t\t\t\n' "$m (bf16 autocast)" >>"$bench_tsv"
      continue
    fi
    echo "==== neurn $m bf16" >>"$out/bench.log"
    n_out=$(NEURN_AUTOCAST_BF16=1 timeout $(($(left) - 30)) "$build_dir/bin/neurn" bench train-step --model "$m" \
      --batch-size 256 --image-size 32 --device cuda --steps 10 --warmup 2 2>&1)
    echo "$n_out" >>"$out/bench.log"
    n_ips=$(echo "$n_out" | sed -n 's/^images_per_second=//p' | tail -1)
    n_mem=$(echo "$n_out" | sed -n 's/^peak_memory_bytes=//p' | tail -1)
    echo "==== pytorch $m bf16" >>"$out/bench.log"
    t_out=$(timeout $(($(left) - 20)) "$PY" scripts/gpu_bench_torch.py --models "$m" --batch 256 --size 32 --steps 10 \
      --warmup 2 --bf16 2>>"$out/bench.log")
    echo "$t_out" >>"$out/bench.log"
    t_ips=$(echo "$t_out" | sed -n 's/.*"images_per_second": \([0-9.e+-]*\).*/\1/p' | tail -1)
    t_mem=$(echo "$t_out" | sed -n 's/.*"peak_memory_bytes": \([0-9]*\).*/\1/p' | tail -1)
    printf '%s\t%s\t%s\t%s\t%s\n' "$m (bf16 autocast)" "${n_ips:-failed: $(echo "$n_out" | tail -1)}" "$n_mem" \
      "$t_ips" "$t_mem" >>"$bench_tsv"
    say "bench $m bf16: neurn ${n_ips:-failed} images/s, PyTorch ${t_ips:-n/a} images/s"
  done
fi

# The NeuRN op alone (forward + backward): images/s and the effective memory
# bandwidth it reaches, counting the minimum traffic (forward reads x and
# writes y; backward reads x and dy and writes dx: 5 float32 tensors), against
# the card's published peak (H100 SXM 3.35 TB/s, H200 4.8 TB/s).
if [ $built = 1 ] && [ $dry_run = 0 ] && [ $bench = 1 ]; then
  gpu_name=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
  case "$gpu_name" in
    *H200*) peak=4.8e12 ;;
    *H100*) peak=3.35e12 ;;
    *) peak="" ;;
  esac
  for cfg in "32 256 3" "224 64 3" "224 64 31"; do
    set -- $cfg
    [ "$(left)" -lt 40 ] && { say "bench neurn $cfg: skipped, out of time"; break; }
    echo "==== neurn op size=$1 batch=$2 k=$3" >>"$out/bench.log"
    n_out=$(timeout $(($(left) - 20)) "$build_dir/bin/neurn" bench neurn --device cuda --image-size "$1" --batch-size "$2" \
      --k "$3" 2>&1)
    echo "$n_out" >>"$out/bench.log"
    ips=$(echo "$n_out" | sed -n 's/^images_per_second=//p' | tail -1)
    if [ -z "$ips" ]; then
      problem "neurn bench neurn --device cuda --image-size $1 --k $3 failed: $(echo "$n_out" | tail -1)"
      continue
    fi
    bw=$(awk -v i="$ips" -v s="$1" 'BEGIN { printf "%.1f", i * 5 * 4 * 3 * s * s / 1e9 }')
    frac=""
    [ -n "$peak" ] && frac=$(awk -v b="$bw" -v p="$peak" 'BEGIN { printf " (%.0f%% of peak)", 100 * b * 1e9 / p }')
    fact "neurn_op_${1}px_k$3" "$ips images/s, $bw GB/s effective$frac"
    say "bench neurn op ${1}x$1 k=$3: $ips images/s, $bw GB/s effective$frac"
  done
fi

# Without a GPU: the benchmark's plumbing on the CPU (both sides parse), and
# the error a cuda run gives where no device is.
if [ $built = 1 ] && [ $dry_run = 1 ]; then
  echo "==== neurn digits_convnet on the cpu (smoke)" >>"$out/bench.log"
  n_out=$("$build_dir/bin/neurn" bench train-step --model digits_convnet --batch-size 2 --steps 1 --warmup 0 --device cpu 2>&1)
  echo "$n_out" >>"$out/bench.log"
  if echo "$n_out" | grep -q '^images_per_second='; then
    say "bench smoke (cpu): neurn $(echo "$n_out" | sed -n 's/^images_per_second=//p') images/s"
  else
    problem "neurn bench train-step gave no images_per_second line: $(echo "$n_out" | tail -1)"
  fi
  c_out=$("$build_dir/bin/neurn" bench train-step --model digits_convnet --batch-size 2 --steps 1 --device cuda 2>&1)
  echo "$c_out" >>"$out/bench.log"
  say "bench on cuda without a device says: $(echo "$c_out" | grep -m1 -i 'cuda')"
  for cand in "$PY" /usr/bin/python3; do
    if "$cand" -c 'import torch, torchvision' 2>/dev/null; then
      t_out=$(timeout 300 "$cand" scripts/gpu_bench_torch.py --device cpu --models digits_convnet resnet50v2 --batch 2 \
        --steps 1 --warmup 0 2>&1)
      echo "$t_out" >>"$out/bench.log"
      if echo "$t_out" | grep -q '"images_per_second"'; then
        say "bench smoke (cpu): PyTorch side runs ($cand)"
      else
        problem "scripts/gpu_bench_torch.py failed: $(echo "$t_out" | tail -1)"
      fi
      break
    fi
  done
fi

# ---- 6. summary ---------------------------------------------------------------------------

fact total_seconds "$(elapsed)"
fact status "$status"
for p in "${problems[@]+"${problems[@]}"}"; do fact problem "$p"; done
summary_py="$PY"
"$summary_py" -c 'import json' 2>/dev/null || summary_py=python3
"$summary_py" - "$out" <<'EOF'
import json, os, sys
out = sys.argv[1]
def rows(name):
    path = os.path.join(out, name)
    return [l.rstrip("\n").split("\t") for l in open(path)] if os.path.exists(path) else []
facts, problems = {}, []
for k, v in rows(".facts.tsv"):
    if k == "problem":
        problems.append(v)
    else:
        facts[k] = v
tests = [{"suite": r[0], "exit": r[1], "seconds": r[2], "result": r[3]} for r in rows(".tests.tsv")]
bench = []
for r in rows(".bench.tsv"):
    r += [""] * (5 - len(r))
    def num(s):
        try:
            return float(s)
        except ValueError:
            return None
    n, t = num(r[1]), num(r[3])
    bench.append({"model": r[0], "neurn_images_per_second": n if n is not None else r[1],
                  "pytorch_images_per_second": t, "ratio_neurn_over_pytorch": (n / t) if n and t else None,
                  "neurn_peak_memory_bytes": num(r[2]), "pytorch_peak_memory_bytes": num(r[4])})
summary = {"facts": facts, "problems": problems, "tests": tests, "bench": bench,
           "bench_settings": "train step (forward, cross entropy, backward, Adam) at 32x32 (a model's minimum "
                             "input where larger, shown with the row), batch 256, 10 steps after 2 warm-up, float32 without TF32, cuDNN heuristics, both on this GPU; rows "
                             "marked bf16 autocast: NEURN_AUTOCAST_BF16=1 and torch.autocast(bfloat16)"}
json.dump(summary, open(os.path.join(out, "summary.json"), "w"), indent=2)
lines = ["neurn gpu-check (%s): %s" % (facts.get("mode"), facts.get("status"))]
for k in ("gpu", "driver", "nvcc", "cudnn", "cublas", "torch", "cmake", "deps", "build_seconds", "total_seconds"):
    lines.append("  %-14s %s" % (k, facts.get(k, "")))
for k in sorted(f for f in facts if f.startswith("neurn_op_")):
    lines.append("  %-18s %s" % (k, facts[k]))
lines.append("tests:")
for t in tests:
    lines.append("  %-18s exit %-3s %5ss  %s" % (t["suite"], t["exit"], t["seconds"], t["result"]))
if bench:
    lines.append("train step, 32x32, batch 256 (images/s; peak MiB):")
    for b in bench:
        fmt = lambda v: ("%.0f" % v) if isinstance(v, float) else (v or "n/a")
        mib = lambda v: ("%.0f" % (v / 2**20)) if v else "n/a"
        ratio = ("%.2f" % b["ratio_neurn_over_pytorch"]) if b["ratio_neurn_over_pytorch"] else "n/a"
        lines.append("  %-15s neurn %8s  pytorch %8s  ratio %5s  peak MiB neurn %6s pytorch %6s" % (
            b["model"], fmt(b["neurn_images_per_second"]), fmt(b["pytorch_images_per_second"]), ratio,
            mib(b["neurn_peak_memory_bytes"]), mib(b["pytorch_peak_memory_bytes"])))
for p in problems:
    lines.append("PROBLEM: " + p)
open(os.path.join(out, "summary.txt"), "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
EOF
rm -f "$out"/.facts.tsv "$out"/.tests.tsv "$out"/.bench.tsv
say "summary in $out/summary.txt and summary.json"
[ "$status" = ok ]

#!/usr/bin/env bash
# Installs the Debian packages neurn builds with; installs only what is
# missing, so it is cheap to run again. Set NEURN_WITH_TORCH=1 to also
# install PyTorch (reference tests and side-by-side benchmarks only).
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config
  libopenblas-dev libyaml-cpp-dev libstb-dev doctest-dev zlib1g-dev libbz2-dev libmatio-dev libhdf5-dev nlohmann-json3-dev
  libssl-dev libarchive-dev libcurl4-openssl-dev libcli11-dev
  libcairo2-dev
  fonts-dejavu-core fonts-liberation fonts-freefont-ttf
  curl ca-certificates
)
if [ "${NEURN_WITH_DOCS:-0}" = "1" ]; then
  packages+=(doxygen)
fi
if [ "${NEURN_WITH_TORCH:-0}" = "1" ]; then
  packages+=(python3 python3-numpy python3-torch python3-torchvision)
fi
# Hardening (make fuzz / make slurm-test, run by .ci/run): clang's libFuzzer
# and a single-node Slurm. Set NEURN_WITH_HARDENING=1 (.ci/run sets it).
if [ "${NEURN_WITH_HARDENING:-0}" = "1" ]; then
  packages+=(clang python3 slurmctld slurmd slurm-client munge)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "setup-deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" > /dev/null

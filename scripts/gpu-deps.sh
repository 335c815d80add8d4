#!/usr/bin/env bash
# The Debian libraries neurn builds with, carried to a machine that lacks them
# and cannot install them (a GPU machine with no network).
#
#   scripts/gpu-deps.sh fetch        here (with apt): downloads the .deb files
#                                    into .gpu-deps/debs (ignored by git)
#   source scripts/gpu-deps.sh use   there: unpacks them into .gpu-deps/root
#                                    (never into /), and exports the variables
#                                    that make CMake, pkg-config, the compiler
#                                    and the loader find them
#
# Only libraries the machine lacks are put on the loader's path: each shared
# library of the prefix whose soname `ldconfig -p` already knows stays out,
# so the system's own copies (libssl, libcurl, ...) keep winning.
# Variables set by `use`: NEURN_DEPS_ROOT, NEURN_DEPS_CMAKE_ARGS (to append to
# cmake's command line), PKG_CONFIG_PATH, LD_LIBRARY_PATH, CPATH, LIBRARY_PATH.

neurn_deps_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.gpu-deps"

# Headers, link-time libraries and their runtime closure (without the C and
# C++ runtimes every machine has). Debian 12 (bookworm) names.
neurn_deps_packages=(
  libopenblas-dev libopenblas-pthread-dev libopenblas0 libopenblas0-pthread libgfortran5 libquadmath0
  libyaml-cpp-dev libyaml-cpp0.7
  libstb-dev libstb0 doctest-dev
  zlib1g-dev zlib1g libbz2-dev libbz2-1.0
  libmatio-dev libmatio11 libhdf5-103-1 libaec0 libsz2
  libcurl4 libnghttp2-14 libidn2-0 librtmp1 libssh2-1 libpsl5 libgssapi-krb5-2 libkrb5-3 libk5crypto3
  libkrb5support0 libkeyutils1 libcom-err2 libldap-2.5-0 libsasl2-2 libsasl2-modules-db libdb5.3 libbrotli1
  libzstd1 libssl3 libgnutls30 libhogweed6 libnettle8 libgmp10 libp11-kit0 libtasn1-6 libunistring2 libffi8
  pkgconf pkgconf-bin libpkgconf3
)

neurn_deps_fetch() {
  mkdir -p "$neurn_deps_dir/debs"
  grep -qx '/.gpu-deps/' "$(git -C "$neurn_deps_dir/.." rev-parse --git-dir)/info/exclude" 2>/dev/null ||
    echo '/.gpu-deps/' >>"$(git -C "$neurn_deps_dir/.." rev-parse --git-dir)/info/exclude"
  (cd "$neurn_deps_dir/debs" && apt-get download "${neurn_deps_packages[@]}") || return 1
  echo "gpu-deps: $(ls "$neurn_deps_dir/debs" | wc -l) packages, $(du -sh "$neurn_deps_dir/debs" | cut -f1) in $neurn_deps_dir/debs"
  echo "gpu-deps: carry .gpu-deps to the GPU machine; scripts/gpu-check.sh uses it when a library is missing there"
}

neurn_deps_use() {
  local root="$neurn_deps_dir/root" arch=x86_64-linux-gnu
  if ! ls "$neurn_deps_dir"/debs/*.deb >/dev/null 2>&1; then
    echo "gpu-deps: no .deb files in $neurn_deps_dir/debs (run scripts/gpu-deps.sh fetch on a machine with apt)" >&2
    return 1
  fi
  if [ ! -f "$root/.unpacked" ]; then
    rm -rf "$root" && mkdir -p "$root"
    for deb in "$neurn_deps_dir"/debs/*.deb; do
      if command -v dpkg-deb >/dev/null; then
        dpkg-deb -x "$deb" "$root" || return 1
      else  # not a Debian system: a .deb is an ar archive holding data.tar.*
        member=$(ar t "$deb" | grep '^data\.tar') || return 1
        case "$member" in
          *.xz) zflag=--xz ;;
          *.zst) zflag=--zstd ;;
          *.gz) zflag=--gzip ;;
          *) zflag= ;;
        esac
        ar p "$deb" "$member" | tar -x $zflag -f - -C "$root" || return 1
      fi
    done
    # Absolute symlinks (libz.so -> /lib/...) point into the prefix instead.
    find "$root" -type l | while read -r link; do
      target=$(readlink "$link")
      case "$target" in /*) [ -e "$root$target" ] && ln -sfn "$root$target" "$link" ;; esac
    done
    # matio.pc links -lhdf5 from hdf5/serial/lib, a link libhdf5-dev would
    # bring (with much more); the runtime library is enough.
    local hdf5
    hdf5=$(ls "$root/usr/lib/$arch"/libhdf5_serial.so.* 2>/dev/null | head -1)
    if [ -n "$hdf5" ]; then
      # (and its -I of hdf5's headers, which matio.h does not include)
      mkdir -p "$root/usr/lib/$arch/hdf5/serial/lib" "$root/usr/lib/$arch/hdf5/serial/include"
      ln -sfn "$hdf5" "$root/usr/lib/$arch/hdf5/serial/lib/libhdf5.so"
    fi
    # pkg-config files with the prefix in place of /usr.
    mkdir -p "$root/pkgconfig"
    find "$root" -name '*.pc' -not -path "$root/pkgconfig/*" | while read -r pc; do
      sed -e "s#\(^\|[=[:space:]]\|-I\|-L\)/usr#\1$root/usr#g" "$pc" >"$root/pkgconfig/$(basename "$pc")"
    done
    touch "$root/.unpacked"
  fi
  # The loader sees only the libraries the system lacks.
  local overlay="$root/overlay"
  rm -rf "$overlay" && mkdir -p "$overlay"
  local known
  known=$(ldconfig -p 2>/dev/null | awk '{print $1}')
  for dir in "$root/lib/$arch" "$root/usr/lib/$arch" "$root/usr/lib/$arch/openblas-pthread"; do
    [ -d "$dir" ] || continue
    for so in "$dir"/*.so.*; do
      [ -e "$so" ] || continue
      name=$(basename "$so")
      grep -qx "$name" <<<"$known" || ln -sfn "$so" "$overlay/$name"
    done
  done
  export NEURN_DEPS_ROOT="$root"
  export PKG_CONFIG_PATH="$root/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
  export LD_LIBRARY_PATH="$overlay${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export LIBRARY_PATH="$overlay${LIBRARY_PATH:+:$LIBRARY_PATH}"
  export CPATH="$root/usr/include:$root/usr/include/$arch${CPATH:+:$CPATH}"
  NEURN_DEPS_CMAKE_ARGS="-DCMAKE_PREFIX_PATH=$root/usr -Dyaml-cpp_DIR=$root/usr/lib/$arch/cmake/yaml-cpp -DCMAKE_BUILD_RPATH=$overlay"
  local pkgconf_bin=""
  command -v pkg-config >/dev/null || pkgconf_bin="$root/usr/bin/pkgconf"
  [ -n "$pkgconf_bin" ] && NEURN_DEPS_CMAKE_ARGS+=" -DPKG_CONFIG_EXECUTABLE=$pkgconf_bin"
  export NEURN_DEPS_CMAKE_ARGS
  echo "gpu-deps: prefix $root; $(ls "$overlay" | wc -l) libraries the system lacks on the loader path"
}

case "${1:-}" in
  fetch) neurn_deps_fetch ;;
  use) neurn_deps_use ;;
  *)
    if [ "${BASH_SOURCE[0]}" = "$0" ]; then
      echo "usage: scripts/gpu-deps.sh fetch | source scripts/gpu-deps.sh use" >&2
      exit 2
    fi
    ;;
esac

#!/usr/bin/env bash
# Installs the Debian packages ump needs to build, test and benchmark. Idempotent: packages
# already present are skipped, and apt-get update runs only when something is missing.
# Usage: tools/install_deps.sh [--bench]   (--bench adds gnuplot for BENCHMARKS.md plots and the
# oneTBB and Boost headers of the MPSC baselines; Asio comes with libasio-dev above)
set -euo pipefail

pkgs=(cmake ninja-build g++ clang clang-format-14 libclang-rt-14-dev libconcurrentqueue-dev doctest-dev
      libbenchmark-dev libasio-dev relacy-dev python3)
if [[ "${1:-}" == "--bench" ]]; then pkgs+=(gnuplot-nox libtbb-dev libboost-dev); fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  exit 0
fi
echo "installing: ${missing[*]}"
sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

#!/usr/bin/env bash
# Builds ump and runs the demo program (examples/demo.cpp) on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install_deps.sh
cmake -S . -B build/demo -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DUMP_BUILD_TESTS=OFF -DUMP_BUILD_FUZZ=OFF >/dev/null
cmake --build build/demo --target demo
./build/demo/examples/demo

#!/usr/bin/env python3
"""Checks that ump's headers include each other one way only.

Four layers, each including only from its own layer or the ones below:
  0. configuration: ump/detail/config.hpp (and ump/detail/atomic.hpp, which it pulls in for
     the model checker). Build settings and the checks every header uses.
  1. vocabulary: ump/result.hpp, ump/options.hpp, ump/scheduler.hpp. Plain types every
     layer speaks (errors and results, options, the scheduler concept).
  2. mechanisms: ump/detail/*.hpp. The queue, the reply cell, parking, the shared state, the
     reply protocol, the awaiters, the client and server cores. Never an endpoint header.
  3. endpoints: every other ump/*.hpp (client, server, reply_context, wait_reply, ng, task,
     run_loop, asio, ...). What users include; they wrap the mechanisms.

Usage: check_layers.py REPO_ROOT. Prints each offending #include as file:line and exits 1
if there is one.
"""
import pathlib
import re
import sys

CONFIGURATION = {"ump/detail/config.hpp", "ump/detail/atomic.hpp"}
VOCABULARY = {"ump/result.hpp", "ump/options.hpp", "ump/scheduler.hpp"}
INCLUDE = re.compile(r'^\s*#\s*include\s+"(ump/[^"]+)"')


def layer(name: str) -> int:
    if name in CONFIGURATION:
        return 0
    if name in VOCABULARY:
        return 1
    if name.startswith("ump/detail/"):
        return 2
    return 3


def check(root: pathlib.Path) -> list[str]:
    problems = []
    inc = root / "include"
    for path in sorted((inc / "ump").rglob("*.hpp")):
        me = path.relative_to(inc).as_posix()
        for number, line in enumerate(path.read_text().splitlines(), 1):
            m = INCLUDE.match(line)
            if not m:
                continue
            other = m.group(1)
            if layer(other) > layer(me):
                problems.append(f"{path}:{number}: {me} (layer {layer(me)}) includes {other} (layer {layer(other)})")
    return problems


def self_test() -> None:
    assert layer("ump/detail/config.hpp") == 0
    assert layer("ump/result.hpp") == 1
    assert layer("ump/detail/state.hpp") == 2
    assert layer("ump/client.hpp") == 3


def main() -> int:
    self_test()
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    problems = check(root)
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} include(s) go against the layers (see tools/check_layers.py)")
        return 1
    print("layers: every include goes one way")
    return 0


if __name__ == "__main__":
    sys.exit(main())

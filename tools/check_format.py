#!/usr/bin/env python3
"""Checks that every C++ source of ump is formatted as .clang-format says.

Usage: check_format.py REPO_ROOT [CLANG_FORMAT]. Runs clang-format (default: clang-format-14,
the version the house style is pinned to: other versions format some constructs
differently) in dry-run mode over the .hpp and .cpp files under include/, src/, tests/,
bench/, fuzz/ and examples/, and exits 1 naming each file that would change. To fix them:
  clang-format-14 -i $(git ls-files '*.hpp' '*.cpp')
"""
import pathlib
import subprocess
import sys

DIRS = ["include", "src", "tests", "bench", "fuzz", "examples"]


def sources(root: pathlib.Path) -> list[pathlib.Path]:
    out = []
    for d in DIRS:
        for ext in ("*.hpp", "*.cpp"):
            out.extend(p for p in (root / d).rglob(ext) if "build" not in p.relative_to(root).parts)
    return sorted(out)


def main() -> int:
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
    tool = sys.argv[2] if len(sys.argv) > 2 else "clang-format-14"
    files = sources(root)
    if not files:
        print("no sources found under", root)
        return 1
    bad = []
    for f in files:
        r = subprocess.run([tool, "--dry-run", "--Werror", f"--style=file:{root / '.clang-format'}", str(f)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            bad.append(f.relative_to(root).as_posix())
    for b in bad:
        print(f"{b}: not formatted (run {tool} -i on it)")
    if bad:
        print(f"{len(bad)} of {len(files)} files differ from .clang-format")
        return 1
    print(f"format: {len(files)} files match .clang-format")
    return 0


if __name__ == "__main__":
    sys.exit(main())

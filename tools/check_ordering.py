#!/usr/bin/env python3
"""Every memory order in ump's library code carries an ORDERING note.

Usage: tools/check_ordering.py [ROOT]   (ROOT defaults to the repository root)

Scans the library code (include/ and src/ under ROOT) for memory orders
(std::memory_order_relaxed, std::memory_order::acquire, ...) outside comments, and
fails, naming file:line, for each one whose statement has no `// ORDERING:` comment,
either on one of the statement's own lines or in the comment lines directly above the
statement (no blank line in between). The note says which operation the order pairs
with, or why relaxed is enough.

A statement that spans several lines starts at the first line after one that ends in
`;`, `{`, `}` or `:` (or after a comment, blank or preprocessor line).

One file is exempt: include/ump/detail/atomic.hpp, the model-checking wrapper, which
only forwards its callers' orders (parameter types, defaults and the mapping to Relacy's
orders) and chooses none of its own.

Before scanning, the checker runs its own small self-test, so that a checker that finds
nothing cannot pass by accident.
"""
import os
import re
import sys

LIBRARY_DIRS = ("include", "src")
EXTENSIONS = (".hpp", ".h", ".cpp", ".cc", ".ipp")
EXEMPT = {
    "include/ump/detail/atomic.hpp": "forwards its callers' memory orders, chooses none",
}
ORDER = re.compile(r"\bmemory_order(_[a-z_]+|::[a-z_]+)\b")
NOTE = "// ORDERING:"


def strip_code(line):
    """The line's code: string and character literals blanked, // comments removed."""
    out = []
    i, n = 0, len(line)
    while i < n:
        ch = line[i]
        if ch in "\"'":
            quote = ch
            out.append(quote)
            i += 1
            while i < n and line[i] != quote:
                i += 2 if line[i] == "\\" else 1
            out.append(quote)
            i += 1
        elif line.startswith("//", i):
            break
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def block_comment_mask(lines):
    """True for each line that lies entirely inside a /* ... */ comment."""
    mask, inside = [], False
    for line in lines:
        s = line.strip()
        if inside:
            mask.append(True)
            if "*/" in s:
                inside = False
            continue
        if s.startswith("/*"):
            mask.append(True)
            inside = "*/" not in s[2:]
            continue
        mask.append(False)
    return mask


def is_comment(line):
    return line.strip().startswith("//")


def ends_statement(code):
    s = code.strip()
    return s == "" or s.startswith("#") or s.endswith((";", "{", "}", ":"))


def check_text(text):
    """Line numbers (1-based) of memory orders without an ORDERING note."""
    lines = text.split("\n")
    in_block = block_comment_mask(lines)
    missing, starts = [], set()
    for i, line in enumerate(lines):
        if in_block[i] or is_comment(line):
            continue
        code = strip_code(line)
        if code.lstrip().startswith("#") or not ORDER.search(code):
            continue
        # Walk up to the first line of the statement.
        start = i
        while start > 0:
            prev = lines[start - 1]
            if in_block[start - 1] or is_comment(prev) or ends_statement(strip_code(prev)):
                break
            start -= 1
        if start in starts:
            continue  # one report per statement
        starts.add(start)
        # ... and down to its last line.
        end = i
        while end + 1 < len(lines) and not ends_statement(strip_code(lines[end])):
            end += 1
        if any(NOTE in lines[k] for k in range(start, end + 1)):
            continue
        k = start - 1
        noted = False
        while k >= 0 and is_comment(lines[k]):
            if NOTE in lines[k]:
                noted = True
                break
            k -= 1
        if not noted:
            missing.append(i + 1)
    return missing


def self_test():
    cases = [
        # (text, expected line numbers without a note)
        ("x.load(std::memory_order_relaxed);", [1]),
        ("x.load(std::memory_order_relaxed);  // ORDERING: relaxed, a counter", []),
        ("// ORDERING: acquire, pairs with f()'s release\nx.load(std::memory_order_acquire);", []),
        ("// ORDERING: acquire\n\nx.load(std::memory_order_acquire);", [3]),
        ("// ORDERING: release CAS, pairs with g()\nwhile (!h.compare_exchange_weak(a, b,\n"
         "    std::memory_order_release,\n    std::memory_order_relaxed)) {}", []),
        ("while (!h.compare_exchange_weak(a, b, std::memory_order_release,\n"
         "                                std::memory_order_relaxed)) {}", [1]),
        ("while (!h.compare_exchange_weak(a, b, std::memory_order_release,\n"
         "    std::memory_order_relaxed)) {}  // ORDERING: release, pairs with g()", []),
        ("// ORDERING: acquire\nvoid f() {\n  x.load(std::memory_order_acquire);\n}", [3]),
        ("// Some prose.\n// ORDERING: relaxed, a hint\n// More prose.\nx.load(std::memory_order::relaxed);", []),
        ("#include <atomic>  // std::memory_order\n// memory_order_relaxed in prose", []),
        ("/* memory_order_acquire\n   memory_order_release */\nint x;", []),
        ('const char* s = "memory_order_relaxed";', []),
        ("// ORDERING: one\na.load(std::memory_order_acquire);\nb.load(std::memory_order_acquire);", [3]),
    ]
    for text, expected in cases:
        got = check_text(text)
        if got != expected:
            sys.stderr.write("check_ordering.py self-test failed on:\n%s\nexpected %s, got %s\n" % (text, expected, got))
            sys.exit(2)


def main(argv):
    root = argv[1] if len(argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    root = os.path.abspath(root)
    self_test()
    failures, checked = [], 0
    for top in LIBRARY_DIRS:
        for dirpath, dirnames, filenames in os.walk(os.path.join(root, top)):
            dirnames.sort()
            for name in sorted(filenames):
                if not name.endswith(EXTENSIONS):
                    continue
                path = os.path.join(dirpath, name)
                rel = os.path.relpath(path, root).replace(os.sep, "/")
                if rel in EXEMPT:
                    continue
                with open(path, encoding="utf-8") as f:
                    text = f.read()
                checked += 1
                for line in check_text(text):
                    failures.append("%s:%d: memory order without an `// ORDERING:` note on the statement "
                                    "or the comment lines directly above it" % (rel, line))
    if checked == 0:
        sys.stderr.write("check_ordering.py: no library sources under %s\n" % root)
        return 2
    for f in failures:
        print(f)
    if failures:
        print("%d memory order(s) without an ORDERING note (in %d files checked)" % (len(failures), checked))
        return 1
    print("every memory order has an ORDERING note (%d files checked)" % checked)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

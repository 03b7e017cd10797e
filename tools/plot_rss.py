#!/usr/bin/env python3
"""Draw ump_rss_flood's CSVs (seconds,rss_kib,queued) as one SVG line chart.

    tools/plot_rss.py [--out bench/results/rss_flood.svg] [--title TEXT] [LABEL=]CSV [...]

Time (s) on x, resident set (MiB) on y, one line per CSV. A CSV's label is LABEL if given,
otherwise taken from its `# ump_rss_flood: capacity=...` comment. Lines starting with '#'
are comments; a `# stopped early: ...` comment marks the line's last point with a cross
and is quoted under the chart. The legend gives each line's peak resident set, so a line
that stays flat near zero can still be read.

Standard library only (no matplotlib).
"""

import argparse
import csv
import math
import os
import re
import sys
from xml.sax.saxutils import escape

COLOURS = ["#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"]
WIDTH, HEIGHT = 900, 520
LEFT, RIGHT, TOP, BOTTOM = 80, 30, 50, 70


def read_csv(path):
    points, notes, label = [], [], None
    with open(path, newline="") as f:
        data_lines = []
        for line in f:
            s = line.strip()
            if not s:
                continue
            if s.startswith("#"):
                text = s.lstrip("#").strip()
                m = re.match(r"ump_rss_flood: capacity=(\d+)", text)
                if m:
                    cap = int(m.group(1))
                    label = "unbounded" if cap == 0 else f"capacity {cap}"
                elif text.startswith("stopped early"):
                    notes.append(text)
                continue
            data_lines.append(s)
    for row in csv.DictReader(data_lines):
        try:
            points.append((float(row["seconds"]), float(row["rss_kib"]) / 1024.0, int(row["queued"])))
        except (KeyError, ValueError):
            continue
    return points, notes, label


def nice_step(span, target_ticks=6):
    if span <= 0:
        return 1.0
    raw = span / target_ticks
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def fmt_tick(x):
    return f"{x:.0f}" if abs(x - round(x)) < 1e-9 else f"{x:g}"


def fmt_mib(x):
    if x >= 1024:
        return f"{x / 1024:.2f} GiB"
    return f"{x:.1f} MiB"


def render(series, title):
    xmax = max((p[0] for _, pts, _ in series for p in pts), default=1.0) or 1.0
    ymax = max((p[1] for _, pts, _ in series for p in pts), default=1.0) or 1.0
    xstep, ystep = nice_step(xmax), nice_step(ymax)
    xmax = math.ceil(xmax / xstep) * xstep
    ymax = math.ceil(ymax / ystep) * ystep
    pw, ph = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def sx(x):
        return LEFT + x / xmax * pw

    def sy(y):
        return TOP + ph - y / ymax * ph

    notes = [(label, n) for label, _, ns in series for n in ns]
    height = HEIGHT + 18 * len(notes)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
           f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">',
           f'<rect width="{WIDTH}" height="{height}" fill="white"/>',
           f'<text x="{WIDTH / 2}" y="28" text-anchor="middle" font-size="15">{escape(title)}</text>']
    # Grid and ticks.
    i = 0
    while i * xstep <= xmax + 1e-9:
        x = i * xstep
        out.append(f'<line x1="{sx(x):.1f}" y1="{TOP}" x2="{sx(x):.1f}" y2="{TOP + ph}" stroke="#e5e5e5"/>')
        out.append(f'<text x="{sx(x):.1f}" y="{TOP + ph + 18}" text-anchor="middle">{fmt_tick(x)}</text>')
        i += 1
    i = 0
    while i * ystep <= ymax + 1e-9:
        y = i * ystep
        out.append(f'<line x1="{LEFT}" y1="{sy(y):.1f}" x2="{LEFT + pw}" y2="{sy(y):.1f}" stroke="#e5e5e5"/>')
        out.append(f'<text x="{LEFT - 8}" y="{sy(y) + 4:.1f}" text-anchor="end">{fmt_tick(y)}</text>')
        i += 1
    out.append(f'<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>')
    out.append(f'<text x="{LEFT + pw / 2}" y="{TOP + ph + 42}" text-anchor="middle">time (s)</text>')
    out.append(f'<text transform="translate(20 {TOP + ph / 2}) rotate(-90)" text-anchor="middle">'
               'resident set (MiB)</text>')
    # Lines, then the legend (top left, inside the plot).
    for k, (label, pts, ns) in enumerate(series):
        colour = COLOURS[k % len(COLOURS)]
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y, _ in pts)
        out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}"/>')
        for x, y, _ in pts:
            out.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2.5" fill="{colour}"/>')
        if ns and pts:
            x, y = sx(pts[-1][0]), sy(pts[-1][1])
            out.append(f'<path d="M{x - 6:.1f},{y - 6:.1f} L{x + 6:.1f},{y + 6:.1f} M{x - 6:.1f},{y + 6:.1f} '
                       f'L{x + 6:.1f},{y - 6:.1f}" stroke="{colour}" stroke-width="2.5"/>')
        peak = max((y for _, y, _ in pts), default=0.0)
        peak_q = max((q for _, _, q in pts), default=0)
        ly = TOP + 20 + 20 * k
        text = f"{label}: peak {fmt_mib(peak)}, at most {peak_q:,} queued" + (" (stopped early, ×)" if ns else "")
        out.append(f'<line x1="{LEFT + 12}" y1="{ly - 4}" x2="{LEFT + 40}" y2="{ly - 4}" stroke="{colour}" '
                   'stroke-width="3"/>')
        out.append(f'<text x="{LEFT + 48}" y="{ly}">{escape(text)}</text>')
    for j, (label, note) in enumerate(notes):
        out.append(f'<text x="{LEFT}" y="{HEIGHT + 18 * j - 6}" font-size="11">{escape(label)}: {escape(note)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    repo_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("csv", nargs="+", help="[LABEL=]path of a ump_rss_flood CSV")
    ap.add_argument("--out", default=os.path.join(repo_root, "bench", "results", "rss_flood.svg"))
    ap.add_argument("--title", default="ump_rss_flood: resident set while a slow server is flooded")
    args = ap.parse_args()
    series = []
    for spec in args.csv:
        label, path = (spec.split("=", 1) if "=" in spec and not os.path.exists(spec) else (None, spec))
        pts, notes, auto = read_csv(path)
        if not pts:
            sys.exit(f"plot_rss: no data rows in {path}")
        series.append((label or auto or os.path.basename(path), pts, notes))
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(render(series, args.title))
    print(f"plot_rss: wrote {args.out}")


if __name__ == "__main__":
    main()

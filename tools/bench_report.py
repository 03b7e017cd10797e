#!/usr/bin/env python3
"""Turn ump_bench's Google Benchmark JSON output into BENCHMARKS.md and a plot.

    tools/bench_report.py bench/results/latest.json [more.json ...]
        [--out BENCHMARKS.md] [--plot bench/results/latency_vs_clients.png]
        [--compiler "g++ 12.2"] [--flags "-O2"] [--targets]

Benchmark names follow `<workload>/<impl>[/<param>:<n>]` (see bench/workloads.hpp);
Google Benchmark's own suffixes (/real_time, /manual_time, /iterations:N, ...) are
ignored. Each value is the median over repetitions (the `_median` aggregate, or the
median of the individual runs when aggregates were not reported). Rows whose impl
starts with "ump" are compared, as ratios, with every other row of the same workload
and parameter, and with the floors. Rows `ump_cap<N>` (a bounded channel, capacity N) are
also set next to the unbounded `ump` row of the same workload and parameter, with their
ratio and cost (section "Bounded channels").

If the output file exists and contains the markers
    <!-- bench_report:begin -->  ...  <!-- bench_report:end -->
only the text between them is replaced, so prose written around the tables survives.

Standard library only.
"""

import argparse
import fnmatch
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys

# ---------------------------------------------------------------------------
# Targets. Each rule selects rows by (workload, impl, params) glob patterns and
# compares one metric with either a fixed bound or a reference row:
#   ref = ("floor", "spin", "")   a fixed row
#   ref = ("post", "moodycamel", "=")  same workload, "=" means the same params
#   ref = "best_baseline"         the best non-ump, non-floor row with the same
#                                 workload and params
#   ref = "gap_floor"             the gap row of gap_floor_for() at the same gap
# `factor` multiplies the reference; `tol` is an absolute slack for "==".
# ---------------------------------------------------------------------------
TARGETS = [
    dict(name="rtt within 1.5x of the spin floor",
         rows=("rtt", "ump", ""), metric="time_ns", rule="<=", ref=("floor", "spin", ""), factor=1.5),
    dict(name="rtt at least 3x faster than moodycamel + atomic slot",
         rows=("rtt", "ump", ""), metric="time_ns", rule="<=", ref=("rtt", "moodycamel_atomic_slot", ""),
         factor=1 / 3),
    # The same two ratios from rtt_paired (bench/ump_paired_bench.cpp): ump, the spin floor and
    # the moodycamel slot timed by the same two threads in alternating blocks, so that a change
    # of the VM's state between two rows cannot move the ratio.
    dict(name="rtt within 1.5x of the spin floor, paired",
         rows=("rtt_paired", "ump", ""), metric="ump_over_spin", rule="<=", bound=1.5),
    dict(name="rtt at least 3x faster than moodycamel + atomic slot, paired",
         rows=("rtt_paired", "ump", ""), metric="ump_over_slot", rule="<=", bound=1 / 3),
    dict(name="rtt at least 10x faster than mutex/condvar + promise",
         rows=("rtt", "ump", ""), metric="time_ns", rule="<=", ref=("rtt", "mutex_condvar_promise", ""),
         factor=0.1),
    dict(name="gap p50 within 1.2x of the floor reachable without spinning through the gap",
         rows=("gap", "ump", "*"), metric="p50_ns", rule="<=", ref="gap_floor", factor=1.2),
    dict(name="contended: 2x the best baseline at each client count",
         rows=("contended", "ump", "*"), metric="items_per_second", rule=">=", ref="best_baseline",
         factor=2.0),
    dict(name="contended: 2x the moodycamel slot at each client count, paired",
         rows=("contended_paired", "ump", "*"), metric="ump_over_slot", rule=">=", bound=2.0),
    dict(name="post: at least moodycamel at each producer count",
         rows=("post", "ump", "*"), metric="items_per_second", rule=">=",
         ref=("post", "moodycamel", "="), factor=1.0),
    dict(name="bounded (capacity N) post: at most 10 % more time per message than unbounded",
         rows=("post", "ump_cap*", "*"), metric="items_per_second", rule=">=",
         ref=("post", "ump", "="), factor=1 / 1.1),
    dict(name="bounded (capacity N) rtt: at most 10 % slower than unbounded",
         rows=("rtt", "ump_cap*", ""), metric="time_ns", rule="<=", ref=("rtt", "ump", ""), factor=1.1),
    dict(name="pipelined: at most 200 ns per request",
         rows=("pipelined", "ump", ""), metric="time_ns", rule="<=", bound=200.0),
    dict(name="coroutines on one thread: at most 100 ns per round trip",
         rows=("coro_same_thread", "ump", ""), metric="time_ns", rule="<=", bound=100.0),
    dict(name="no heap allocation per request",
         rows=("*", "ump*", "*"), metric="allocs_per_req", rule="==", bound=0.0, tol=0.0,
         warmup=True),
    dict(name="at most one futex wake per round trip",
         rows=("cost", "ump_futex_per_rtt", "*"), metric="futex_wake_per_rt", rule="<=", bound=1.0),
    dict(name="an idle parked server uses about no CPU (at most 1 ms per s)",
         rows=("cost", "ump_idle_server_cpu", ""), metric="server_cpu_ms_per_s", rule="<=", bound=1.0),
]

# The allocation target's bounded warm-up. A channel allocates a node only when the sending
# lane's stock and the shared pool are both empty, so the nodes it ever allocates are at most
# max_lanes × stock_batch (the stocks, include/ump/detail/state.hpp) plus the requests in
# flight (one per client thread in these workloads). A row whose run allocated a nonzero
# count within that bound is a warm-up that has not finished, not a cost per request: a cost
# per request would grow with the run's millions of requests. Pipelined rows have 64 in flight.
WARMUP_NODES = 8 * 16


def warmup_bound(key):
    m = re.search(r"threads:(\d+)", key[2])
    in_flight = int(m.group(1)) if m else 1
    if key[0] == "pipelined":
        in_flight = 64
    return WARMUP_NODES + in_flight


# How each workload is shown. metrics: (key, column title, better). The first
# metric is the one ratios and targets talk about by default. `refs` are other
# workloads whose rows are shown as references (the floors for rtt).
WORKLOADS = {
    "floor": dict(
        title="Floors: two threads ping-ponging one word",
        note="Pure spin, std::atomic wait/notify_one, raw futex (always parks). "
             "Nothing built on these primitives can beat them on this machine.",
        metrics=[("time_ns", "mean per round trip", "lower"), ("p50_ns", "p50", "lower"),
                 ("p99_ns", "p99", "lower")]),
    "rtt": dict(
        title="rtt: one client, back-to-back round trips",
        note="Mean from the timed loop; p50/p99 from one round trip in 8 timed on its own. "
             "allocs/req counts heap allocations of all threads.",
        metrics=[("time_ns", "mean per round trip", "lower"), ("p50_ns", "p50", "lower"),
                 ("p99_ns", "p99", "lower"), ("allocs_per_req", "allocs/req", "lower")],
        refs=["floor"]),
    "rtt_paired": dict(
        title="rtt_paired: ump, the spin floor and moodycamel + slot, in turns on the same two threads",
        note="Blocks of 256 back-to-back round trips of each kind, in turn, 1500 triples per run "
             "(bench/ump_paired_bench.cpp). Per round trip: the median over the triples; ratios: "
             "the median of the per-triple ratios, each triple measured within about a millisecond.",
        metrics=[("ump_over_spin", "ump ÷ spin floor", "lower"), ("ump_over_slot", "ump ÷ slot", "lower"),
                 ("ump_ns", "ump", "lower"), ("spin_ns", "spin floor", "lower"), ("slot_ns", "moodycamel + slot", "lower")]),
    "contended_paired": dict(
        title="contended_paired: ump and moodycamel + slot, in turns on the same client and server threads",
        note="N client threads, one outstanding request each, take turns at blocks of 8000 round "
             "trips in all through ump and through moodycamel with a reply slot per client; one "
             "server thread answers both (bench/ump_paired_bench.cpp). 20 pairs of blocks per run; "
             "the ratio is the median of the per-pair throughput ratios.",
        metrics=[("ump_over_slot", "ump ÷ slot (throughput)", "higher"),
                 ("ump_rps", "ump, M round trips/s", "higher"), ("slot_rps", "slot, M round trips/s", "higher")]),
    "gap": dict(
        title="gap: a request sent N µs after the previous reply (N = gap_us)",
        note="The client busy-waits the gap on the clock (pause loop, never sleeping) in every "
             "row; only the round trip is timed. A server whose spin budget is shorter than the "
             "gap has parked and pays a wake-up. Floors: `floor_spin` pure spin, `floor_futex_park` "
             "parks at once (FUTEX_WAKE only when the peer parked), `floor_futex_spin50_park` "
             "pause-spins 50 µs then parks, `floor_futex_yield50_park` sched_yield-spins 50 µs "
             "then parks.",
        metrics=[("p50_ns", "p50", "lower"), ("p99_ns", "p99", "lower"),
                 ("time_ns", "mean", "lower")]),
    "rtt_loaded": dict(
        title="rtt_loaded: back-to-back round trips while one busy thread per core competes",
        note="Client and server share the cores with CPU hogs at the same priority (threads "
             "outnumber cores): what a wait strategy costs on a busy machine.",
        metrics=[("time_ns", "mean per round trip", "lower"), ("p50_ns", "p50", "lower"),
                 ("p99_ns", "p99", "lower")]),
    "contended": dict(
        title="contended: N client threads, one outstanding request each",
        note="Throughput is completed round trips per second over all clients; latency is "
             "the mean round trip one client sees (wall time × N / round trips).",
        metrics=[("items_per_second", "round trips/s", "higher"),
                 ("latency_ns", "latency per round trip", "lower")]),
    "pipelined": dict(
        title="pipelined: 64 sends, then 64 waits",
        note="Time per request.",
        metrics=[("time_ns", "per request", "lower"), ("allocs_per_req", "allocs/req", "lower")]),
    "post": dict(
        title="post: N producers, one consumer blocking when empty",
        note="Messages consumed per second.",
        metrics=[("items_per_second", "messages/s", "higher")]),
}
WORKLOAD_ORDER = ["floor", "rtt", "rtt_paired", "gap", "rtt_loaded", "contended", "contended_paired", "pipelined", "post"]

# The gap sweep's reference: the best a server can do without spinning through the whole
# gap. Up to gap_spin_limit_us a spin budget of that size covers the gap, so the spin floor
# is reachable; beyond it a server that does not burn a core for the whole gap has parked,
# so the floor is the futex ping-pong that parks at once.
GAP_SPIN_LIMIT_US = 50
GAP_SPIN_FLOOR = "floor_spin"
GAP_PARK_FLOOR = "floor_futex_park"


def gap_us(params):
    m = re.fullmatch(r"gap_us:(\d+)", params)
    return int(m.group(1)) if m else None


def gap_floor_for(params):
    g = gap_us(params)
    if g is None:
        return None
    return GAP_SPIN_FLOOR if g <= GAP_SPIN_LIMIT_US else GAP_PARK_FLOOR

LOWER_IS_BETTER = {"time_ns", "cpu_ns", "latency_ns", "allocs_per_req"}

STD_FIELDS = {
    "name", "family_index", "per_family_instance_index", "run_name", "run_type", "repetitions",
    "repetition_index", "threads", "iterations", "real_time", "cpu_time", "time_unit",
    "aggregate_name", "aggregate_unit", "error_occurred", "error_message", "label",
    "bytes_per_second", "items_per_second",
}
GB_SUFFIX = re.compile(r"^(real_time|manual_time|process_time|"
                       r"(iterations|min_time|min_warmup_time|repeats):.*)$")
TIME_SCALE = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}

BEGIN_MARK = "<!-- bench_report:begin -->"
END_MARK = "<!-- bench_report:end -->"


# ---------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------
def split_name(run_name):
    parts = [p for p in run_name.split("/") if not GB_SUFFIX.match(p)]
    workload = parts[0]
    impl = parts[1] if len(parts) > 1 else ""
    params = "/".join(parts[2:])
    return workload, impl, params


def entry_values(e):
    scale = TIME_SCALE.get(e.get("time_unit", "ns"), 1.0)
    v = {"time_ns": e["real_time"] * scale, "cpu_ns": e["cpu_time"] * scale}
    for k in ("items_per_second", "bytes_per_second"):
        if k in e:
            v[k] = e[k]
    for k, x in e.items():
        if k not in STD_FIELDS and isinstance(x, (int, float)) and not isinstance(x, bool):
            v[k] = float(x)
    return v


def load(paths):
    """Returns (rows, context, repetitions) with rows[(workload, impl, params)] = values."""
    runs = {}        # run_name -> list of iteration entries
    medians = {}     # run_name -> median aggregate entry
    errors = {}
    context = {}
    reps = set()
    for path in paths:
        with open(path) as f:
            data = json.load(f)
        context.update(data.get("context", {}))
        for e in data.get("benchmarks", []):
            run_name = e.get("run_name", e["name"])
            if e.get("error_occurred"):
                errors[run_name] = e.get("error_message", "error")
                continue
            if e.get("run_type") == "aggregate":
                reps.add(e.get("repetitions", 1))
                if e.get("aggregate_name") == "median":
                    medians[run_name] = e
            else:
                runs.setdefault(run_name, []).append(e)
    rows = {}
    for run_name in set(runs) | set(medians):
        if run_name in medians:
            values = entry_values(medians[run_name])
        else:
            per_run = [entry_values(e) for e in runs[run_name]]
            reps.add(len(per_run))
            keys = set.intersection(*(set(p) for p in per_run))
            values = {k: statistics.median(p[k] for p in per_run) for k in keys}
        key = split_name(run_name)
        if key in rows:
            print(f"bench_report: {run_name} appears twice, keeping the last", file=sys.stderr)
        rows[key] = values
    for run_name, msg in errors.items():
        print(f"bench_report: {run_name} failed: {msg}", file=sys.stderr)
    return rows, context, reps, errors


# ---------------------------------------------------------------------------
# Formatting
# ---------------------------------------------------------------------------
def fmt_ns(ns):
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e4:
        return f"{ns / 1e3:.1f} µs"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} µs"
    if ns >= 10:
        return f"{ns:.0f} ns"
    return f"{ns:.1f} ns"


def fmt_rate(x, unit=""):
    for div, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if x >= div:
            return f"{x / div:.3g} {prefix}{unit}/s"
    return f"{x:.3g} {unit}/s"


def fmt_value(metric, x):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    if metric.endswith("_ns"):
        return fmt_ns(x)
    if metric == "bytes_per_second":
        return fmt_rate(x, "B")
    if metric.endswith("_per_second"):
        return fmt_rate(x)
    if metric == "allocs_per_req":
        return "0" if x == 0 else f"{x:.3g}"
    return f"{x:.4g}"


def fmt_ratio(x):
    if x is None or x == 0 or math.isnan(x) or math.isinf(x):
        return "—"
    if x < 0.1:
        return f"{x:.2g}×"
    return f"{x:.2f}×" if x < 10 else f"{x:.3g}×"


def better(metric, hint=None):
    """"lower", "higher", or None when nothing is known about the metric."""
    if hint:
        return hint
    if metric in LOWER_IS_BETTER or metric.endswith("_ns"):
        return "lower"
    if metric.endswith("_per_second"):
        return "higher"
    return None


def md_table(header, body):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in body]
    return "\n".join(out)


def param_sort_key(p):
    nums = re.findall(r"\d+", p)
    return (re.sub(r"\d+", "", p), [int(n) for n in nums])


def is_ump(impl):
    return impl.startswith("ump")


def is_floor(workload, impl):
    return workload == "floor" or impl.startswith("floor_")


# ---------------------------------------------------------------------------
# Sections
# ---------------------------------------------------------------------------
def run_cmd(cmd, cwd=None):
    try:
        return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine_header(context, args, reps, repo_root):
    model = ""
    flags = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and not model:
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags") and not flags:
                    flags = line.split(":", 1)[1]
    except OSError:
        pass
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    virt = []
    detected = run_cmd(["systemd-detect-virt"]) if shutil.which("systemd-detect-virt") else ""
    if detected and detected != "none":
        virt.append(f"systemd-detect-virt: {detected}")
    if " hypervisor" in flags:
        virt.append("cpuinfo has the hypervisor flag (running in a VM)")
    for path in ("/sys/hypervisor/type", "/sys/class/dmi/id/sys_vendor", "/sys/class/dmi/id/product_name"):
        try:
            with open(path) as f:
                val = f.read().strip()
            if val:
                virt.append(f"{os.path.basename(path)}: {val}")
        except OSError:
            pass
    compiler = args.compiler or context.get("ump_compiler", "unknown")
    cxx_flags = args.flags or context.get("ump_cxx_flags", "unknown")
    commit = run_cmd(["git", "rev-parse", "--short", "HEAD"], cwd=repo_root) or "no commit yet"
    # The report's own outputs do not count: they change with every run.
    if run_cmd(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                ":(exclude)BENCHMARKS.md", ":(exclude)bench/results"], cwd=repo_root):
        commit += " (with uncommitted changes)"
    mhz = context.get("mhz_per_cpu")
    lines = [
        f"- **Machine:** {model or 'unknown CPU'}, {cpus} logical CPUs"
        + (f", {mhz} MHz" if mhz else "")
        + (f"; {'; '.join(virt)}" if virt else "; no virtualization detected"),
        f"- **Kernel:** {platform.system()} {platform.release()}",
        f"- **Compiler:** {compiler}; **flags:** `{cxx_flags}`",
        f"- **Commit:** {commit}",
        f"- **Run:** {context.get('date', 'unknown date')}, load average at start "
        + ", ".join(f"{x:.2f}" for x in context.get("load_avg", [])),
        f"- **Repetitions:** {', '.join(str(r) for r in sorted(reps)) or '1'}; every value is the "
        "median over repetitions. Compare numbers inside one run, as ratios: on a shared VM "
        "absolute numbers move by 2× between runs.",
    ]
    if context.get("library_build_type") == "debug":
        lines.append("- Google Benchmark library reports a debug build (distribution package); it "
                     "only affects the loop bookkeeping, not the measured code.")
    return "\n".join(lines)


def workload_section(workload, rows, spec):
    title = spec.get("title", workload)
    metrics = spec.get("metrics")
    mine = {k: v for k, v in rows.items() if k[0] == workload}
    if not metrics:  # unknown workload: time, rate if any, then counters
        keys = set().union(*(v.keys() for v in mine.values()))
        metrics = [("time_ns", "time", "lower")]
        if "items_per_second" in keys:
            metrics.append(("items_per_second", "items/s", "higher"))
        if "bytes_per_second" in keys:
            metrics.append(("bytes_per_second", "bytes/s", "higher"))
        metrics += [(k, k, None) for k in sorted(keys - {"time_ns", "cpu_ns", "items_per_second",
                                                         "bytes_per_second"})]
    refs = {k: v for k, v in rows.items() if k[0] in spec.get("refs", [])}
    impls = sorted({k[1] for k in mine}, key=lambda i: (not is_ump(i), i))
    ref_impls = sorted({(k[0], k[1]) for k in refs})
    params = sorted({k[2] for k in mine}, key=param_sort_key)
    umps = [i for i in impls if is_ump(i)]
    out = [f"### {title}", ""]
    if spec.get("note"):
        out += [spec["note"], ""]

    def label(w, i):
        return f"`{w}/{i}`" if w != workload else f"`{i}`"

    all_rows = [(workload, i) for i in impls] + ref_impls
    others = [(w, i) for w, i in all_rows if not is_ump(i)]  # what ump rows are compared with
    primary, _, primary_hint = metrics[0]
    if params == [""]:
        # One row per implementation, one column per metric.
        body = []
        for w, i in all_rows:
            v = rows.get((w, i, ""), {})
            body.append([label(w, i)] + [fmt_value(m, v.get(m)) for m, _, _ in metrics])
        out += [md_table(["impl"] + [t for _, t, _ in metrics], body), ""]
        ratio_metrics = [mt for mt in metrics if mt[0] != "allocs_per_req"]
        for u in umps:
            uv = rows[(workload, u, "")]
            body = []
            for w, i in others:
                v = rows.get((w, i, ""), {})
                body.append([label(w, i)] + [
                    fmt_ratio(uv[m] / v[m]) if m in uv and v.get(m) else "—" for m, _, _ in ratio_metrics])
            if body:
                out += [f"`{u}` ÷ each row (time: below 1 = {u} faster; rate: above 1 = {u} faster):",
                        "", md_table(["vs"] + [t for _, t, _ in ratio_metrics], body), ""]
    else:
        # One table per metric: implementations × parameter values.
        for m, t, hint in metrics:
            body = []
            for w, i in all_rows:
                body.append([label(w, i)] + [fmt_value(m, rows.get((w, i, p), {}).get(m)) for p in params])
            if any(c != "—" for r in body for c in r[1:]):
                out += [f"**{t}**" + (" (higher is better)" if better(m, hint) == "higher" else ""),
                        "", md_table(["impl"] + [p or "(none)" for p in params], body), ""]
        for u in umps:
            body = []
            for w, i in others:
                cells = []
                for p in params:
                    uv = rows.get((workload, u, p), {}).get(primary)
                    v = rows.get((w, i, p), {}).get(primary)
                    cells.append(fmt_ratio(uv / v) if uv is not None and v else "—")
                body.append([label(w, i)] + cells)
            if body:
                direction = {"higher": f" (above 1 = {u} better)", "lower": f" (below 1 = {u} better)"}
                out += [f"`{u}` ÷ each row, {metrics[0][1]}{direction.get(better(primary, primary_hint), '')}:",
                        "", md_table(["vs"] + [p or "(none)" for p in params], body), ""]
    return "\n".join(out)


def gap_summary(rows):
    """Per gap: each ump row's p50 next to the reachable floor's p50 and their ratio."""
    params = sorted({k[2] for k in rows if k[0] == "gap" and gap_us(k[2]) is not None}, key=gap_us)
    umps = sorted({k[1] for k in rows if k[0] == "gap" and is_ump(k[1])}, key=lambda i: (i != "ump", i))
    if not params or not umps:
        return ""
    header = ["gap", "reachable floor", "floor p50"]
    for u in umps:
        header += [f"`{u}` p50", f"`{u}` ÷ floor"]
    body = []
    for p in params:
        floor = gap_floor_for(p)
        fv = rows.get(("gap", floor, p), {}).get("p50_ns")
        line = [f"{gap_us(p)} µs", f"`{floor}`", fmt_value("p50_ns", fv)]
        for u in umps:
            uv = rows.get(("gap", u, p), {}).get("p50_ns")
            ratio = fmt_ratio(uv / fv) if uv is not None and fv else "—"
            line += [fmt_value("p50_ns", uv), ratio]
        body.append(line)
    return "\n".join([
        "**ump against the floor it can reach** (target ≤ 1.2×): up to "
        f"{GAP_SPIN_LIMIT_US} µs the spin floor (a spin budget can cover the gap), beyond it "
        "the futex floor that parks at once (any server that does not spin through the gap "
        "has parked).", "", md_table(header, body), ""])


# Bounded channels: rows `ump_cap<N>` are the `ump` rows' workloads on a channel with
# channel_options::capacity = N; bounded_summary() sets each next to its unbounded row.
CAP_IMPL = re.compile(r"ump_cap(\d+)")
BOUNDED_COST_LIMIT = 0.10


def bounded_summary(rows):
    """Each ump_cap<N> row next to the unbounded `ump` row of the same workload and params:
    both values, their ratio (capacity ÷ unbounded) and the cost as extra time per message
    or round trip."""
    caps = sorted({k for k in rows if CAP_IMPL.fullmatch(k[1])},
                  key=lambda k: (WORKLOAD_ORDER.index(k[0]) if k[0] in WORKLOAD_ORDER else len(WORKLOAD_ORDER),
                                 k[0], int(CAP_IMPL.fullmatch(k[1]).group(1)), param_sort_key(k[2])))
    body = []
    for w, i, p in caps:
        base = rows.get((w, "ump", p))
        if base is None:
            continue
        metrics = WORKLOADS.get(w, {}).get("metrics") or [("time_ns", "time", "lower")]
        for m, title, hint in metrics:
            if m == "allocs_per_req" or m not in base or m not in rows[(w, i, p)]:
                continue
            uv, cv = base[m], rows[(w, i, p)][m]
            ratio = cv / uv if uv else float("nan")
            direction = better(m, hint)
            # Cost as extra time: a rate's time per item is its inverse.
            if direction == "higher":
                cost = uv / cv - 1 if cv else float("nan")
            elif direction == "lower":
                cost = ratio - 1
            else:
                cost = float("nan")
            if math.isnan(cost):
                cost_text, verdict = "—", "—"
            else:
                cost_text = f"{cost * 100:+.1f} %"
                verdict = "met" if cost <= BOUNDED_COST_LIMIT else "**missed**"
            body.append([f"`{w}`" + (f" {p}" if p else ""), title, fmt_value(m, uv), f"`{i}`",
                         fmt_value(m, cv), fmt_ratio(ratio), cost_text, verdict])
    if not body:
        return ""
    return "\n".join([
        "### Bounded channels: capacity N against unbounded",
        "",
        "Rows `ump_cap<N>` run the `ump` workload of the same name on a channel with "
        "`channel_options::capacity = N`; `ump` is the same channel unbounded, in the same run. "
        "Ratio: capacity ÷ unbounded of the metric. Cost: the extra time per message (post: "
        "unbounded rate ÷ bounded rate − 1) or per round trip (rtt: bounded ÷ unbounded − 1); "
        f"target ≤ {BOUNDED_COST_LIMIT * 100:.0f} %.",
        "",
        md_table(["workload", "metric", "unbounded `ump`", "bounded row", "bounded", "bounded ÷ unbounded",
                  "cost", f"≤ {BOUNDED_COST_LIMIT * 100:.0f} %"], body),
        ""])


# A spin floor whose readings around and in a run differ by more than this factor means the VM
# changed state during it (BENCHMARKS.md, "How to read these numbers").
FLOOR_SHIFT_LIMIT = 1.5


def floor_check(paths, suite_rows):
    """The spin floor measured just before the suite, in it (its own floor/spin row) and just
    after it: (a line for the Environment section, False if it moved by more than
    FLOOR_SHIFT_LIMIT). Three readings still miss a change that comes and goes between them."""
    values = []
    for path in paths:
        try:
            rows = load([path])[0]
        except (OSError, ValueError, KeyError):
            rows = {}
        values.append(rows.get(("floor", "spin", ""), {}).get("time_ns"))
    values.insert(1, suite_rows.get(("floor", "spin", ""), {}).get("time_ns"))
    text = ", ".join(f"{when} {fmt_value('time_ns', v)}"
                     for when, v in zip(("before", "in the suite", "after"), values))
    line = f"- **Spin floor around the run:** {text}"
    if None in values:
        return line + " (a reading is missing).", True
    lo, hi = min(values), max(values)
    if hi > lo * FLOOR_SHIFT_LIMIT:
        return line + (". **The VM changed state during the run:** rows measured minutes apart are "
                       "not comparable; the paired rows (`rtt_paired`, `contended_paired`) still are."), False
    return line + (": the VM was in the same state at the three readings (it may still have "
                   "changed between them: rows taken minutes apart can differ)."), True


def evaluate_targets(rows, state_kept=True):
    """Returns a list of (target name, row label, value, bound, status). With `state_kept`
    false (the spin floor moved during the run), a target whose bound comes from another row
    is marked as no verdict: the two rows may have been measured in different VM states."""
    results = []
    for t in TARGETS:
        wpat, ipat, ppat = t["rows"]
        metric = t["metric"]
        matched = sorted(k for k in rows if fnmatch.fnmatchcase(k[0], wpat)
                         and fnmatch.fnmatchcase(k[1], ipat) and fnmatch.fnmatchcase(k[2], ppat))
        matched = [k for k in matched if metric in rows[k]]
        if not matched:
            results.append((t["name"], "—", "—", "—", "n/a (no ump rows yet)"))
            continue
        for key in matched:
            value = rows[key][metric]
            bound, ref_label = None, ""
            if "bound" in t:
                bound = t["bound"]
            elif t["ref"] == "gap_floor":
                floor = gap_floor_for(key[2])
                if floor and metric in rows.get(("gap", floor, key[2]), {}):
                    bound = rows[("gap", floor, key[2])][metric] * t.get("factor", 1.0)
                    ref_label = f"gap/{floor}/{key[2]}"
            elif t["ref"] == "best_baseline":
                cands = [(k, v[metric]) for k, v in rows.items()
                         if k[0] == key[0] and k[2] == key[2] and not is_ump(k[1])
                         and not is_floor(k[0], k[1]) and metric in v]
                if cands:
                    pick = max if better(metric) == "higher" else min
                    best = pick(cands, key=lambda c: c[1])
                    bound, ref_label = best[1] * t.get("factor", 1.0), best[0][1]
            else:
                rw, ri, rp = t["ref"]
                ref_key = (rw, ri, key[2] if rp == "=" else rp)
                if metric in rows.get(ref_key, {}):
                    bound = rows[ref_key][metric] * t.get("factor", 1.0)
                    ref_label = "/".join(x for x in ref_key if x)
            label = "/".join(x for x in key if x)
            if bound is None:
                results.append((t["name"], label, fmt_value(metric, value), "—", "n/a (no reference)"))
                continue
            rule = t["rule"]
            if rule == "<=":
                ok = value <= bound
            elif rule == ">=":
                ok = value >= bound
            else:
                ok = abs(value - bound) <= t.get("tol", 0.0)
            factor = t.get("factor", 1.0)
            bound_text = f"{rule} {fmt_value(metric, bound)}"
            if ref_label:
                bound_text += f" ({factor:.3g}× {ref_label})"
            status = "met" if ok else "**missed**"
            allocs = rows[key].get("allocs")
            most = warmup_bound(key)
            if not ok and t.get("warmup") and allocs is not None and allocs <= most:
                status = f"met: a bounded warm-up ({allocs:.0f} allocations per run, at most {most} ever)"
            if ref_label and not state_kept:
                status += ", not a verdict: the VM changed state during the run"
            results.append((t["name"], label, fmt_value(metric, value), bound_text, status))
    return results


def targets_section(rows, state_kept=True):
    body = [list(r) for r in evaluate_targets(rows, state_kept)]
    return "\n".join(["### Targets", "", md_table(["target", "row", "value", "bound", "status"], body), ""])


# ---------------------------------------------------------------------------
# Plot
# ---------------------------------------------------------------------------
def write_plot(rows, png_path):
    series = {}
    for (w, i, p), v in rows.items():
        m = re.fullmatch(r"threads:(\d+)", p)
        if w == "contended" and m and "items_per_second" in v:
            series.setdefault(i, []).append((int(m.group(1)), v.get("latency_ns", float("nan")),
                                             v["items_per_second"]))
    if not series:
        return None
    os.makedirs(os.path.dirname(png_path) or ".", exist_ok=True)
    base = os.path.splitext(png_path)[0]
    dat, gp = base + ".dat", base + ".gp"
    impls = sorted(series, key=lambda i: (not is_ump(i), i))
    with open(dat, "w") as f:
        f.write("# contended workload: clients, latency per round trip (us), round trips per second (k)\n")
        for i in impls:
            f.write(f"# {i}\n")
            for n, lat, ips in sorted(series[i]):
                f.write(f"{n} {lat / 1e3:.6g} {ips / 1e3:.6g}\n")
            f.write("\n\n")
    max_clients = max(n for pts in series.values() for n, _, _ in pts)
    # ump rows solid, baselines dashed; a point type per row, since colours repeat after 8.
    def style(k, i):
        return f"with linespoints lw 2 lt {k + 1} pt {k + 1} dt {1 if is_ump(i) else 2}"
    plots_lat = ", ".join(f"'{os.path.basename(dat)}' index {k} using 1:2 {style(k, i)} title '{i}'"
                          for k, i in enumerate(impls))
    plots_tp = ", ".join(f"'{os.path.basename(dat)}' index {k} using 1:3 {style(k, i)} title '{i}'"
                         for k, i in enumerate(impls))
    with open(gp, "w") as f:
        f.write(f"""# generated by tools/bench_report.py
set terminal pngcairo size 1200,520 font ',10' noenhanced dashed
set linetype 9 lc rgb '#8b4513'
set linetype 10 lc rgb '#000080'
set linetype 11 lc rgb '#808000'
set linetype 12 lc rgb '#ff1493'
set output '{os.path.basename(png_path)}'
set multiplot layout 1,2 title 'contended: one server, N clients with one outstanding request each'
set logscale xy 2
set xrange [0.8:{max_clients * 1.25}]
set xtics (1, 2, 4, 8, 16, 32, 64, 128)
set grid
set key below horizontal
set xlabel 'client threads'
set ylabel 'latency per round trip (µs, log)'
plot {plots_lat}
set ylabel 'round trips per second (thousands, log)'
plot {plots_tp}
unset multiplot
""")
    if not shutil.which("gnuplot"):
        print("bench_report: gnuplot not found, plot not drawn", file=sys.stderr)
        return None
    r = subprocess.run(["gnuplot", os.path.basename(gp)], cwd=os.path.dirname(gp) or ".",
                       capture_output=True, text=True)
    if r.returncode != 0:
        print(f"bench_report: gnuplot failed: {r.stderr.strip()}", file=sys.stderr)
        return None
    return png_path


# ---------------------------------------------------------------------------
def main():
    repo_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("json", nargs="+", help="Google Benchmark JSON output files")
    ap.add_argument("--out", default=os.path.join(repo_root, "BENCHMARKS.md"))
    ap.add_argument("--plot", default=os.path.join(repo_root, "bench", "results", "latency_vs_clients.png"))
    ap.add_argument("--compiler", help="compiler description (default: from the JSON context)")
    ap.add_argument("--flags", help="compile flags (default: from the JSON context)")
    ap.add_argument("--targets", action="store_true", help="also print the targets table")
    ap.add_argument("--no-write", action="store_true", help="do not write --out (with --targets)")
    ap.add_argument("--floor-check", nargs=2, metavar=("BEFORE", "AFTER"),
                    help="JSON files of floor/spin runs taken just before and just after the suite "
                         "(compared with the suite's own floor/spin row)")
    args = ap.parse_args()

    rows, context, reps, errors = load(args.json)
    if not rows:
        sys.exit("bench_report: no benchmark results found")

    parts = ["## Environment", "", machine_header(context, args, reps, repo_root)]
    state_kept = True
    if args.floor_check:
        line, state_kept = floor_check(args.floor_check, rows)
        parts.append(line)
    parts.append("")
    if any(is_ump(k[1]) for k in rows):
        parts += [targets_section(rows, state_kept)]
    else:
        parts += ["No `*/ump*` rows in these results: baselines and floors only.", ""]
    workloads = [w for w in WORKLOAD_ORDER if any(k[0] == w for k in rows)]
    workloads += sorted({k[0] for k in rows} - set(WORKLOAD_ORDER))
    png = None if args.no_write else write_plot(rows, args.plot)
    parts += ["## Results", ""]
    for w in workloads:
        parts.append(workload_section(w, rows, WORKLOADS.get(w, {"title": w})))
        if w == "gap":
            parts.append(gap_summary(rows))
        if w == "contended" and png:
            rel = os.path.relpath(png, os.path.dirname(os.path.abspath(args.out)))
            parts += [f"![latency and throughput vs clients]({rel})", ""]
    bounded = bounded_summary(rows)
    if bounded:
        parts.append(bounded)
    if errors:
        parts += ["### Failed benchmarks", ""] + [f"- `{n}`: {m}" for n, m in sorted(errors.items())] + [""]
    generated = "\n".join(parts).rstrip() + "\n"

    if args.targets:
        print(targets_section(rows, state_kept))
        summary = gap_summary(rows)
        if summary:
            print(summary)
        if bounded:
            print(bounded)
    if args.no_write:
        return
    block = f"{BEGIN_MARK}\n<!-- generated by tools/bench_report.py; edits inside are overwritten -->\n\n" \
            f"{generated}\n{END_MARK}\n"
    existing = ""
    if os.path.exists(args.out):
        with open(args.out) as f:
            existing = f.read()
    if BEGIN_MARK in existing and END_MARK in existing:
        head, rest = existing.split(BEGIN_MARK, 1)
        tail = rest.split(END_MARK, 1)[1].lstrip("\n")
        text = head + block + tail
    else:
        text = "# Benchmarks\n\nGenerated by `tools/run_benchmarks.sh` (see `bench/`).\n\n" + block
    with open(args.out, "w") as f:
        f.write(text)
    print(f"bench_report: wrote {args.out}" + (f" and {png}" if png else ""))


if __name__ == "__main__":
    main()

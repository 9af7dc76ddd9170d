#!/usr/bin/env python3
"""Issue 3's speed targets, measured in one run: prints the table bench/README.md quotes.

    scripts/bench_targets.py [--build build] [--repetitions 5] [--min-time 0.2] [--json out.json]

Runs bench_core (SGEMM, MLP: kiln vs eager, OpenBLAS, Eigen) and bench_conv (convolutions: kiln
vs eager and oneDNN; the FMA peak and the copy bandwidth that make the roofline) back to back from
one build (Release, -O2 -march=native as scripts/test.sh builds it), takes the median of the
repetitions, and derives every ratio from figures of this run only. Nothing here asserts a time:
it reports "met"/"short" against the issue's thresholds for the reader. Peers that were not found
at configure time (OpenBLAS, oneDNN, Eigen) show as "-".
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys


def run_bench(exe, bench_filter, reps, min_time):
    cmd = [exe, f"--benchmark_filter={bench_filter}", f"--benchmark_repetitions={reps}",
           f"--benchmark_min_time={min_time}", "--benchmark_enable_random_interleaving=true",
           "--benchmark_format=json"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    doc = json.loads(out)
    runs = {}
    for b in doc["benchmarks"]:
        if b.get("run_type") != "iteration" or b.get("error_occurred"):
            continue
        runs.setdefault(b["run_name"], []).append(b)
    return doc["context"], runs


def median(runs, name, field):
    """Median of one counter ("FLOPS", "bytes_per_second") or of cpu_time in ns ("ns")."""
    if name not in runs:
        return None
    if field == "ns":
        unit = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}
        return statistics.median(b["cpu_time"] * unit[b["time_unit"]] for b in runs[name])
    return statistics.median(b[field] for b in runs[name])


def machine_line(build):
    """CPU model, compiler and flags of the build, commit: what a quoted figure needs beside it."""
    cpu, isa = platform.machine(), []
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    have = set(line.split(":", 1)[1].split())
                    isa = [name for flag, name in (("avx2", "AVX2"), ("fma", "FMA"), ("avx512f", "AVX-512F"))
                           if flag in have]
                    break
    except OSError:
        pass
    if isa:
        cpu += " (" + ", ".join(isa) + ")"
    cache = {}
    try:
        with open(os.path.join(build, "CMakeCache.txt")) as f:
            for line in f:
                if "=" in line and ":" in line.split("=", 1)[0]:
                    key, value = line.rstrip("\n").split("=", 1)
                    cache[key.split(":")[0]] = value
    except OSError:
        pass
    compiler = cache.get("CMAKE_CXX_COMPILER", "?")
    try:
        compiler = subprocess.run([compiler, "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    except (OSError, IndexError):
        pass
    flags = cache.get("CMAKE_CXX_FLAGS_RELEASE", "?") + (" -march=native" if cache.get("KILN_NATIVE") == "ON" else "")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    return f"{cpu}; {compiler}, {flags}; commit {commit or '?'}"


def fmt(x, digits=1, scale=1.0):
    return "-" if x is None else f"{x / scale:,.{digits}f}"


def ratio(a, b):
    return None if a is None or b is None else a / b


def verdict(value, threshold, higher_is_better=True):
    if value is None:
        return "-"
    ok = value >= threshold if higher_is_better else value <= threshold
    return "met" if ok else "short"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build")
    ap.add_argument("--repetitions", type=int, default=5)
    ap.add_argument("--min-time", default="0.2")
    ap.add_argument("--json", help="also write the raw medians here")
    args = ap.parse_args()

    core = os.path.join(args.build, "bench", "bench_core")
    conv = os.path.join(args.build, "bench", "bench_conv")
    for exe in (core, conv):
        if not os.access(exe, os.X_OK):
            sys.exit(f"bench_targets: {exe} not built (cmake --build {args.build} --target bench_core bench_conv)")

    ctx, c = run_bench(core, r"BM_(sgemm_(run_into|eager|openblas|eigen)/(256|512)|mlp_(run_into|eager|eigen|eigen_fixed)/)",
                       args.repetitions, args.min_time)
    _, v = run_bench(conv, r"BM_(conv_(compiled|eager|onednn_nhwc|onednn_blocked)/[0-2]|fma_peak|copy_activation)",
                     args.repetitions, args.min_time)

    G = 1e9
    peak = median(v, "BM_fma_peak", "FLOPS")
    copy_bw = median(v, "BM_copy_activation", "bytes_per_second")
    # Roofline for the 56x56x64 layers: min(compute peak, arithmetic intensity x copy bandwidth),
    # bytes = the activation read once and written once (weights are <= 16 KB, left out).
    act_bytes = 2 * 56 * 56 * 64 * 4
    flops = {"depthwise": 2 * 56 * 56 * 64 * 9, "pointwise": 2 * 56 * 56 * 64 * 64}

    def roof(layer):
        if peak is None or copy_bw is None:
            return None
        return min(peak, flops[layer] / act_bytes * copy_bw)

    rows = []
    for n in (256, 512):
        k = median(c, f"BM_sgemm_run_into/{n}", "FLOPS")
        ob = median(c, f"BM_sgemm_openblas/{n}", "FLOPS")
        rows.append((f"SGEMM {n} (GFLOP/s)", fmt(k, 1, G), f"OpenBLAS {fmt(ob, 1, G)}, Eigen "
                     f"{fmt(median(c, f'BM_sgemm_eigen/{n}', 'FLOPS'), 1, G)}, eager "
                     f"{fmt(median(c, f'BM_sgemm_eager/{n}', 'FLOPS'), 1, G)}",
                     f"{fmt(ratio(k, ob), 2)} of OpenBLAS", ">= 0.90 of OpenBLAS",
                     verdict(ratio(k, ob), 0.90)))
    k = median(v, "BM_conv_compiled/0", "FLOPS")
    rows.append(("conv 3x3 1x32x32x16->32 (GFLOP/s)", fmt(k, 1, G),
                 f"oneDNN NHWC {fmt(median(v, 'BM_conv_onednn_nhwc/0', 'FLOPS'), 1, G)}, blocked "
                 f"{fmt(median(v, 'BM_conv_onednn_blocked/0', 'FLOPS'), 1, G)}, eager "
                 f"{fmt(median(v, 'BM_conv_eager/0', 'FLOPS'), 1, G)}",
                 f"{fmt(ratio(k, peak), 2)} of FMA peak", ">= 80 GFLOP/s", verdict(None if k is None else k / G, 80)))
    for idx, layer, title in ((1, "depthwise", "depthwise 3x3 56x56x64"), (2, "pointwise", "1x1 conv 56x56x64->64")):
        k = median(v, f"BM_conv_compiled/{idx}", "FLOPS")
        r = roof(layer)
        rows.append((f"{title} (GFLOP/s)", fmt(k, 1, G),
                     f"roof {fmt(r, 1, G)}; oneDNN NHWC {fmt(median(v, f'BM_conv_onednn_nhwc/{idx}', 'FLOPS'), 1, G)}, "
                     f"blocked {fmt(median(v, f'BM_conv_onednn_blocked/{idx}', 'FLOPS'), 1, G)}, eager "
                     f"{fmt(median(v, f'BM_conv_eager/{idx}', 'FLOPS'), 1, G)}",
                     f"{fmt(ratio(k, r), 2)} of roof", ">= 0.70 of roof", verdict(ratio(k, r), 0.70)))
    b256 = median(c, "BM_mlp_run_into/256", "ns")
    per_sample = None if b256 is None else b256 / 256
    rows.append(("MLP 10-64-32-1 batch 256 (ns/sample)", fmt(per_sample, 1),
                 f"Eigen {fmt(median(c, 'BM_mlp_eigen/256', 'ns'), 1, 256)}, eager "
                 f"{fmt(median(c, 'BM_mlp_eager/256', 'ns'), 1, 256)}",
                 f"{fmt(ratio(median(c, 'BM_mlp_eager/256', 'ns'), b256), 1)}x faster than eager",
                 "<= 80 ns/sample", verdict(per_sample, 80, higher_is_better=False)))
    b1 = median(c, "BM_mlp_run_into/1", "ns")
    rows.append(("MLP 10-64-32-1 batch 1 (ns)", fmt(b1, 0),
                 f"Eigen fixed {fmt(median(c, 'BM_mlp_eigen_fixed/1', 'ns'), 0)}, dynamic "
                 f"{fmt(median(c, 'BM_mlp_eigen/1', 'ns'), 0)}, eager {fmt(median(c, 'BM_mlp_eager/1', 'ns'), 0)}",
                 f"{fmt(ratio(median(c, 'BM_mlp_eigen_fixed/1', 'ns'), b1), 2)} of Eigen fixed's speed",
                 "(no target)", ""))

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"Machine: {machine_line(args.build)}")
    print(f"{ctx.get('num_cpus')} CPUs at "
          f"{ctx.get('mhz_per_cpu')} MHz (as Google Benchmark reads it); load {load:.2f} at the end; "
          f"{args.repetitions} repetitions x {args.min_time} s, medians of CPU time; "
          f"FMA peak {fmt(peak, 1, G)} GFLOP/s, copy {fmt(copy_bw, 1, G)} GB/s (56x56x64 activation).")
    print()
    print("| workload | kiln compiled | same run: peers, eager | ratio | target | |")
    print("|---|---:|---|---:|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"peak_flops": peak, "copy_bytes_per_second": copy_bw, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()

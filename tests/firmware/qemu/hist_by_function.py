#!/usr/bin/env python3
"""Sums the instruction-count plugin's per-address histogram (insn_count.c, hist=FILE) per function.

    python3 hist_by_function.py <image.elf> <hist file> [top N]

Function ranges come from `arm-none-eabi-nm -S -C`; prints each function's share of all executed
instructions, largest first (the whole run: both inferences of an mlperf image and its checks)."""
import bisect
import subprocess
import sys


def main():
    elf, hist = sys.argv[1], sys.argv[2]
    top = int(sys.argv[3]) if len(sys.argv) > 3 else 25
    syms = []
    out = subprocess.run(["arm-none-eabi-nm", "-S", "-C", "--defined-only", elf], check=True,
                         capture_output=True, text=True).stdout
    for line in out.splitlines():
        parts = line.split(" ", 3)
        if len(parts) == 4 and parts[2] in "tTwW":
            start, size = int(parts[0], 16) & ~1, int(parts[1], 16)
            syms.append((start, start + size, parts[3]))
    syms.sort()
    starts = [s[0] for s in syms]
    per = {}
    total = 0
    with open(hist) as f:
        for line in f:
            addr, count = line.split()
            addr, count = int(addr, 16), int(count)
            total += count
            k = bisect.bisect_right(starts, addr) - 1
            name = syms[k][2] if k >= 0 and addr < syms[k][1] else "?"
            per[name] = per.get(name, 0) + count
    for name, count in sorted(per.items(), key=lambda kv: -kv[1])[:top]:
        print(f"{count:12d} {100.0 * count / total:5.1f}%  {name[:150]}")
    print(f"{total:12d} total")


if __name__ == "__main__":
    main()

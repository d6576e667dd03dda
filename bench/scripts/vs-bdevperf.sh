#!/usr/bin/env bash
# bfsperf on the SPDK backend against SPDK's own bdevperf, on the same config, in the same run.
#
# Both tools start SPDK from the same JSON config (default: a 1 GiB malloc bdev) and run the
# same job on one core: 4 KiB, QD 128, randread then randwrite. bdevperf runs on core CORE
# (-m); bfsperf's polling thread is pinned to the same core with taskset. Target: bfsperf
# IOPS >= 0.9 x bdevperf IOPS for each workload.
#
# This script builds bfsperf (cargo build --release -p bench --features spdk, which needs SPDK
# installed: pkg-config spdk_bdev, or SPDK_DIR); it never builds SPDK. bdevperf comes from:
#   BDEVPERF=/path/to/bdevperf, or the first argument, or $SPDK_DIR/build/examples/bdevperf.
# With SPDK_DIR, bdevperf's shared libraries are looked up in its build tree.
#
# Environment: RUNTIME (seconds per run, default 10), REPEAT (alternating pairs, default 1;
# on a busy machine use more and read best bfsperf / best bdevperf), CONFIG, CORE (default
# 0), WORKLOADS (default "randread randwrite"), QD (128), IO (4096).
#
# Besides IOPS, each run reports the CPU share its polling thread received in the middle of
# the run (from /proc/PID/task/*/schedstat); "per CPU-second" compares IOPS / share, which
# other load on a shared machine disturbs far less than IOPS.
# Both tools need the config's memory in hugepages (about 1.2 GiB for the default), one run
# at a time: `echo 1024 > /proc/sys/vm/nr_hugepages` configures 2 GiB.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
RUNTIME=${RUNTIME:-10}
REPEAT=${REPEAT:-1}
CONFIG=${CONFIG:-$ROOT/bench/configs/malloc.json}
CORE=${CORE:-0}
WORKLOADS=${WORKLOADS:-randread randwrite}
QD=${QD:-128}
IO=${IO:-4096}
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/bfsperf

BDEVPERF=${BDEVPERF:-${1:-}}
if [ -z "$BDEVPERF" ] && [ -n "${SPDK_DIR:-}" ]; then
    BDEVPERF=$SPDK_DIR/build/examples/bdevperf
fi
if [ -z "$BDEVPERF" ] || [ ! -x "$BDEVPERF" ]; then
    echo "vs-bdevperf: SPDK's bdevperf not found: give BDEVPERF=/path/to/bdevperf (or as the" \
        "first argument), or SPDK_DIR=/path/to/built/spdk" >&2
    exit 2
fi
if [ -n "${SPDK_DIR:-}" ]; then
    export LD_LIBRARY_PATH=$SPDK_DIR/build/lib:$SPDK_DIR/dpdk/build/lib:${LD_LIBRARY_PATH:-}
elif libdir=$(pkg-config --variable=libdir spdk_bdev 2>/dev/null); then
    export LD_LIBRARY_PATH=$libdir:${LD_LIBRARY_PATH:-}
fi

free_mib=$(awk '/^HugePages_Free:/ {f=$2} /^Hugepagesize:/ {s=$2} END {print int(f*s/1024)}' \
    /proc/meminfo)
echo "hugepages free: ${free_mib} MiB"

(cd "$ROOT" && cargo build --release -p bench --features spdk)

MASK=$(printf '0x%x' $((1 << CORE)))
PIN=()
if command -v taskset >/dev/null; then
    PIN=(taskset -c "$CORE")
fi
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

# Runs "$@" with output in $1.txt; meanwhile measures the CPU share its busiest thread (the
# polling thread) got over a window inside the timed run, into $1.cpu. On a shared machine
# IOPS / share ("IOPS per CPU-second received") is far steadier than IOPS.
run_sampled() {
    local out=$1
    shift
    "$@" >"$out.txt" 2>&1 &
    # The window sits inside the timed part of even a short run: start-up takes ~1 s.
    local pid=$! warm window
    warm=$(python3 -c "print(2 + $RUNTIME / 10)")
    window=$(python3 -c "print($RUNTIME / 2)")
    sleep "$warm"
    declare -A before
    local t
    for t in /proc/$pid/task/*; do
        before[$t]=$(awk '{print $1}' "$t/schedstat" 2>/dev/null || echo 0)
    done
    sleep "$window"
    local best=0 now d
    for t in "${!before[@]}"; do
        now=$(awk '{print $1}' "$t/schedstat" 2>/dev/null || echo 0)
        d=$((now - before[$t]))
        [ "$d" -gt "$best" ] && best=$d
    done
    if [ -d "/proc/$pid" ]; then
        python3 -c "print($best / ($window * 1e9))" >"$out.cpu"
    else
        echo 0 >"$out.cpu" # ended inside the window: no measure (RUNTIME too short)
    fi
    wait "$pid" || {
        cat "$out.txt"
        exit 1
    }
}
run_bdevperf() { # workload pair
    echo "== $1, pair $2: bdevperf"
    run_sampled "$OUT/bdevperf-$1-$2" "$BDEVPERF" --json "$CONFIG" -q "$QD" -o "$IO" -w "$1" \
        -t "$RUNTIME" -m "$MASK"
}
run_bfsperf() { # workload pair
    echo "== $1, pair $2: bfsperf --spdk"
    run_sampled "$OUT/bfsperf-$1-$2" "${PIN[@]}" "$BIN" --spdk -c "$CONFIG" -q "$QD" -o "$IO" \
        -w "$1" -t "$RUNTIME" --output-json "$OUT/bfsperf-$1-$2.json"
}

# Pairs alternate which tool goes first, so that neither always runs right after the other.
for w in $WORKLOADS; do
    for i in $(seq 1 "$REPEAT"); do
        if [ $((i % 2)) -eq 1 ]; then
            run_bdevperf "$w" "$i"
            run_bfsperf "$w" "$i"
        else
            run_bfsperf "$w" "$i"
            run_bdevperf "$w" "$i"
        fi
    done
done

python3 - "$OUT" "$REPEAT" "$WORKLOADS" <<'PY'
import json, re, statistics, sys
out, repeat, workloads = sys.argv[1], int(sys.argv[2]), sys.argv[3].split()
TARGET = 0.9

def table(path):
    """The result table of a bdevperf-style report: from its header to its Total line."""
    lines = open(path).read().splitlines()
    start = next(i for i, l in enumerate(lines) if "Device Information" in l)
    end = next(i for i, l in enumerate(lines) if l.strip().startswith("Total"))
    return lines[start - 1:end + 1]

def bdevperf_iops(path):
    total = table(path)[-1]
    return float(re.split(r":\s*", total, maxsplit=1)[1].split()[0])

def cpu(path):
    try:
        return float(open(path).read())
    except (OSError, ValueError):
        return 0.0

failed = False
for w in workloads:
    pairs = []
    for i in range(1, repeat + 1):
        ref = bdevperf_iops(f"{out}/bdevperf-{w}-{i}.txt")
        ours = json.load(open(f"{out}/bfsperf-{w}-{i}.json"))["total"]["iops"]
        pairs.append((ref, ours, cpu(f"{out}/bdevperf-{w}-{i}.cpu"),
                      cpu(f"{out}/bfsperf-{w}-{i}.cpu")))
    print(f"\n### {w}: SPDK bdevperf (last run)")
    print("\n".join(table(f"{out}/bdevperf-{w}-{repeat}.txt")))
    print(f"\n### {w}: bfsperf --spdk (last run)")
    print("\n".join(table(f"{out}/bfsperf-{w}-{repeat}.txt")))
    print()
    effs = []
    for n, (ref, ours, cref, cours) in enumerate(pairs, 1):
        eff = (ours / cours) / (ref / cref) if cref > 0 and cours > 0 else float("nan")
        effs.append(eff)
        print(f"{w} pair {n}: bdevperf {ref:10.0f} IOPS (cpu {cref:.2f})  "
              f"bfsperf {ours:10.0f} IOPS (cpu {cours:.2f})  ratio {ours / ref:.3f}  "
              f"per CPU-second {eff:.3f}")
    # Interference only slows a run down: each tool's best run is its least disturbed one.
    best = max(p[1] for p in pairs) / max(p[0] for p in pairs)
    ok = best >= TARGET
    failed |= not ok
    median = statistics.median(p[1] / p[0] for p in pairs)
    good = [e for e in effs if e == e]
    eff = f"{statistics.median(good):.3f}" if good else "n/a"
    print(f"{w}: best bfsperf / best bdevperf = {best:.3f} "
          f"({'meets' if ok else 'MISSES'} the target >= {TARGET}); median of pair ratios "
          f"{median:.3f}; median ratio of IOPS per CPU-second received {eff} "
          f"({repeat} pairs)")
sys.exit(1 if failed else 0)
PY

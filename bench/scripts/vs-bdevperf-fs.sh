#!/usr/bin/env bash
# The filesystem and the raw device against SPDK's bdevperf on one SPDK malloc bdev: the
# measurements of issue 22's "Must hold".
#
# Six cells, each run PASSES times (default 3) with the order of the three tools rotated
# from pass to pass, each cell the median of its passes: SPDK `bdevperf`, `bfsperf --spdk`
# (raw bdev) and `bfsperf --spdk --fs` (a file of a fresh bypassfs on the bdev, direct I/O),
# each for randread and randwrite; one core (CORE), 4 KiB, QD 128, 10 s, all from the same
# JSON config (default bench/configs/malloc.json: a 1 GiB malloc bdev). Prints the table and
# the ratios raw/bdevperf (target >= 0.95) and fs/bdevperf (randread >= 0.5, randwrite
# >= 0.4), and writes every run's numbers as JSON to OUT_JSON (default: printed at the end).
# The machine's load average is recorded before and after every run: on a shared machine
# read the ratios with it.
#
#   SPDK_DIR=/path/to/spdk bash bench/scripts/vs-bdevperf-fs.sh
# Environment: SPDK_DIR or BDEVPERF (SPDK's bdevperf), CONFIG, BDEV (default Malloc0),
# RUNTIME (10), PASSES (3), QD (128), IO (4096), CORE (0), OUT_JSON, NO_HUGE (1: ordinary
# memory, -s 1536; default: hugepages when 1300 MiB are free).
# Exit status 0 when every run finished with non-zero IOPS and no failed I/O (the ratios
# are reported, not enforced).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$ROOT/bench/scripts
RUNTIME=${RUNTIME:-10}
PASSES=${PASSES:-3}
QD=${QD:-128}
IO=${IO:-4096}
CORE=${CORE:-0}
CONFIG=${CONFIG:-$ROOT/bench/configs/malloc.json}
BDEV=${BDEV:-Malloc0}
BFSPERF=${CARGO_TARGET_DIR:-$ROOT/target}/release/bfsperf

BDEVPERF=${BDEVPERF:-${SPDK_DIR:+$SPDK_DIR/build/examples/bdevperf}}
if [ -z "$BDEVPERF" ] || [ ! -x "$BDEVPERF" ]; then
    echo "vs-bdevperf-fs: SPDK's bdevperf not found: give SPDK_DIR=/path/to/built/spdk or" \
        "BDEVPERF=/path/to/bdevperf" >&2
    exit 2
fi
if libdir=$(pkg-config --variable=libdir spdk_bdev 2>/dev/null); then
    export LD_LIBRARY_PATH=$libdir:${LD_LIBRARY_PATH:-}
fi

free_mib=$(awk '/^HugePages_Free:/ {f=$2} /^Hugepagesize:/ {s=$2} END {print int(f*s/1024)}' \
    /proc/meminfo)
if [ -z "${NO_HUGE:-}" ]; then
    NO_HUGE=$([ "$free_mib" -ge 1300 ] && echo 0 || echo 1)
fi
MEM_ARGS=()
[ "$NO_HUGE" = 1 ] && MEM_ARGS=(--no-huge -s 1536)
echo "vs-bdevperf-fs: hugepages free ${free_mib} MiB; memory:" \
    "$([ "$NO_HUGE" = 1 ] && echo "ordinary (--no-huge -s 1536)" || echo hugepages)"

(cd "$ROOT" && cargo build -q --release -p bench --features spdk)

OUT=$(mktemp -d /tmp/vs-bdevperf-fs.XXXXXX)
STARTED_PIDS=()
cleanup() {
    local rc=$? pid
    set +e
    for pid in "${STARTED_PIDS[@]}"; do
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
        rm -f /dev/hugepages/spdk_pid"${pid}"map_* 2>/dev/null
        rm -rf /var/run/dpdk/spdk_pid"${pid}" 2>/dev/null
    done
    rm -rf "$OUT"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

MASK=$(printf '0x%x' $((1 << CORE)))
PIN=()
command -v taskset >/dev/null && PIN=(taskset -c "$CORE")

# On a shared machine another process may hold the hugepages for a while (a RAM bdev takes
# them when it can): wait up to a minute for enough to be free before each run.
wait_for_hugepages() {
    [ "$NO_HUGE" = 1 ] && return 0
    local i free
    for i in $(seq 600); do
        free=$(awk '/^HugePages_Free:/ {f=$2} /^Hugepagesize:/ {s=$2} END {print int(f*s/1024)}' \
            /proc/meminfo)
        [ "$free" -ge 1300 ] && return 0
        [ "$i" = 1 ] && echo "vs-bdevperf-fs: waiting for 1300 MiB of free hugepages ($free now)"
        sleep 0.1
    done
    echo "vs-bdevperf-fs: hugepages still taken after a minute; trying anyway" >&2
}

run() { # tool workload pass
    local tool=$1 w=$2 p=$3 out=$OUT/$1-$2-$3
    local cmd
    case $tool in
    bdevperf) cmd=("$BDEVPERF" --json "$CONFIG" -m "$MASK") ;;
    raw) cmd=("${PIN[@]}" "$BFSPERF" --spdk -c "$CONFIG" -T "$BDEV") ;;
    fs) cmd=("${PIN[@]}" "$BFSPERF" --spdk --fs -c "$CONFIG" -T "$BDEV") ;;
    esac
    echo "== pass $p $w: $tool"
    wait_for_hugepages
    cut -d' ' -f1 /proc/loadavg >"$out.load"
    "${cmd[@]}" -q "$QD" -o "$IO" -w "$w" -t "$RUNTIME" "${MEM_ARGS[@]}" >"$out.txt" 2>&1 &
    local pid=$!
    STARTED_PIDS+=("$pid")
    cpu_share "$pid" "$out" &
    local sampler=$!
    if ! wait "$pid"; then
        echo "vs-bdevperf-fs: $tool $w failed:" >&2
        grep -v '^\[20' "$out.txt" | tail -20 >&2
        exit 1
    fi
    wait "$sampler" || true
    cut -d' ' -f1 /proc/loadavg >>"$out.load"
}

# The share of a core process $1 received over the middle of its timed run (all its threads:
# the filesystem's folder thread works on the same pinned core), into $2.cpu. Other load on a
# shared machine moves IOPS a lot and IOPS per CPU-second received far less.
cpu_share() {
    local pid=$1 out=$2 hz t0 t1
    hz=$(getconf CLK_TCK)
    until grep -q "Running I/O" "$out.txt" 2>/dev/null; do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    local window
    window=$(python3 -c "print($RUNTIME / 2)")
    sleep "$(python3 -c "print($RUNTIME / 5)")"
    t0=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null) || return 0
    sleep "$window"
    t1=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null) || return 0
    python3 -c "print(($t1 - $t0) / $hz / $window)" >"$out.cpu"
}

TOOLS=(bdevperf raw fs)
for p in $(seq 1 "$PASSES"); do
    for w in randread randwrite; do
        # Pass p starts with tool p-1 (mod 3): each tool goes first, second and third.
        for i in 0 1 2; do
            run "${TOOLS[$(((p - 1 + i) % 3))]}" "$w" "$p"
        done
    done
done

python3 - "$OUT" "$PASSES" "$HERE" "$QD" "$IO" "$RUNTIME" "$CONFIG" "$NO_HUGE" \
    "${OUT_JSON:-}" <<'PY'
import datetime, json, os, platform, statistics, sys
out, passes, here, qd, io, runtime, config, no_huge, out_json = sys.argv[1:10]
passes = int(passes)
sys.path.insert(0, here)
import bdevperf_table as bt

TOOLS = {"bdevperf": "SPDK bdevperf", "raw": "bfsperf --spdk", "fs": "bfsperf --spdk --fs"}
TARGETS = {("raw", "randread"): 0.95, ("raw", "randwrite"): 0.95,
           ("fs", "randread"): 0.5, ("fs", "randwrite"): 0.4}
runs, cells, effs = [], {}, {}
for tool in TOOLS:
    for w in ("randread", "randwrite"):
        vals = []
        for p in range(1, passes + 1):
            base = f"{out}/{tool}-{w}-{p}"
            iops = bt.check(base + ".txt")
            load = [float(x) for x in open(base + ".load").read().split()]
            try:
                cpu = float(open(base + ".cpu").read())
            except (OSError, ValueError):
                cpu = float("nan")  # the run ended before the window did
            runs.append({"tool": tool, "workload": w, "pass": p, "iops": iops,
                         "cpu_share": cpu, "iops_per_cpu_s": iops / cpu if cpu > 0 else None,
                         "loadavg_1min_before_after": load})
            vals.append(iops)
            effs.setdefault((tool, w), []).append(iops / cpu if cpu > 0 else float("nan"))
        cells[(tool, w)] = (statistics.median(vals), vals)

cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
            if l.startswith("model name")), platform.processor())
print(f"\nSPDK malloc bdev ({os.path.basename(config)}), one core, {io} B, QD {qd}, {runtime} s, "
      f"median of {passes} passes; {'ordinary memory' if no_huge == '1' else 'hugepages'}; "
      f"{os.cpu_count()} x {cpu}; {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC")
print(f"| {'':22} | {'randread IOPS':>14} | {'x bdevperf':>10} | {'randwrite IOPS':>14} | "
      f"{'x bdevperf':>10} |")
print(f"|{'-' * 24}|{'-' * 16}:|{'-' * 11}:|{'-' * 16}:|{'-' * 11}:|")
summary = {}
for tool, label in TOOLS.items():
    line = f"| {label:22} |"
    for w in ("randread", "randwrite"):
        med = cells[(tool, w)][0]
        ratio = med / cells[("bdevperf", w)][0]
        summary[f"{tool}_{w}"] = {"median_iops": med, "passes": cells[(tool, w)][1],
                                  "ratio_to_bdevperf": ratio}
        line += f" {med:14.0f} | {ratio:10.2f} |"
    print(line)
print("\nIOPS per CPU-second the process received (median; steadier than IOPS under load):")
print(f"| {'':22} | {'randread':>10} | {'x bdevperf':>10} | {'randwrite':>10} | {'x bdevperf':>10} |")
print(f"|{'-' * 24}|{'-' * 11}:|{'-' * 11}:|{'-' * 11}:|{'-' * 11}:|")
for tool, label in TOOLS.items():
    line = f"| {label:22} |"
    for w in ("randread", "randwrite"):
        good = lambda t: [e for e in effs[(t, w)] if e == e]
        mine, ref = good(tool), good("bdevperf")
        if mine and ref:
            e, r = statistics.median(mine), statistics.median(ref)
            summary[f"{tool}_{w}"]["median_iops_per_cpu_s"] = e
            line += f" {e:10.0f} | {e / r:10.2f} |"
        else:
            line += f" {'n/a':>10} | {'n/a':>10} |"
    print(line)
print()
for (tool, w), target in TARGETS.items():
    r = summary[f"{tool}_{w}"]["ratio_to_bdevperf"]
    print(f"{TOOLS[tool]} {w}: {r:.2f} x bdevperf (target >= {target}: "
          f"{'meets' if r >= target else 'MISSES'})")
doc = {"date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
       "backend": "SPDK malloc bdev through SPDK itself (bdevperf; bfsperf --spdk)",
       "config": os.path.basename(config), "cores": 1, "io_size": int(io),
       "queue_depth": int(qd), "runtime_s": float(runtime), "passes": passes,
       "memory": "ordinary (--no-huge)" if no_huge == "1" else "hugepages",
       "machine": f"{os.cpu_count()} x {cpu}", "cells": summary, "runs": runs}
text = json.dumps(doc, indent=1)
if out_json:
    open(out_json, "w").write(text + "\n")
    print(f"raw JSON: {out_json}")
else:
    print(text)
PY

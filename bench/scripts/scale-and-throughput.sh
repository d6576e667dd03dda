#!/usr/bin/env bash
# Every ratio of issue 23 ("Scale and throughput") from one run, each against its anchor
# measured in the same run, then one summary table of the issue's targets.
#
# Parts (each prints its own table first, then the summary collects them):
#   two cores  bfsperf --fs on the RAM backend (bench/configs/malloc.json, no SPDK),
#              4 KiB direct, QD 32: `-m 0x3` (one job per core) against `-m 0x1`, for
#              randread and randwrite on a file per job, and randwrite with both jobs on
#              one file (--shared-file); targets 1.8, 1.8 and 1.6. The filesystem's own
#              threads (the folder, the timed commit) run on the CPUs of -m, as SPDK runs
#              every poller on its core mask, so 0x1 is one core in all
#              (FS_THREADS=anywhere: wherever the scheduler puts them, as before
#              2026-12-08, when 0x1 had the folder on the second core for free); each row
#              prints the CPU the process used and what that is per I/O;
#   kernel     bench/scripts/vs-kernel-fs.sh: 4 KiB direct randread and randwrite QD 32,
#              4 KiB write + fdatasync against fio's psync engine, 1 MiB buffered write +
#              end fsync, cold 1 MiB buffered read, cached 4 KiB random buffered read, against
#              XFS (and ext4) on a loop device over a file in /dev/shm;
#   namespace  bench/scripts/vs-kernel-meta.sh: create + 4 KiB + close, stat, unlink, and a
#              tree extract, against XFS and ext4 the same way.
# Every bfsperf row prints its p99 and max latency (issue 23: a write over 50 ms is a
# stall to explain); the kernel scripts print theirs.
#
# Needs root (loop devices, mkfs, mount). On a machine shared with other work the ratios
# move with the load: the load average is printed before and after each part.
#
# Usage: bench/scripts/scale-and-throughput.sh [--quick]
# Environment: RUNTIME (seconds per two-core row, default 5; --quick 2), PARTS (default
# "cores kernel meta"), FS_THREADS (mask or anywhere, default mask), and whatever the two kernel scripts take (SIZE, FILE_SIZE, FSES,
# REPEAT, FILES, ...), passed on to them; RESULTS (directory for every raw output; default
# a temporary one, kept and named at the end).
set -euo pipefail

QUICK=""
for arg in "$@"; do
    case "$arg" in
        --quick) QUICK=1 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "scale-and-throughput.sh: unknown argument '$arg' (only --quick)" >&2; exit 2 ;;
    esac
done

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
RUNTIME=${RUNTIME:-${QUICK:+2}}; RUNTIME=${RUNTIME:-5}
PARTS=${PARTS:-cores kernel meta}
FS_THREADS=${FS_THREADS:-mask}
RESULTS=${RESULTS:-$(mktemp -d /tmp/scale-and-throughput.XXXXXX)}
mkdir -p "$RESULTS"
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/bfsperf
load() { cut -d' ' -f1-3 /proc/loadavg; }

if [ ! -x "$BIN" ] || [ -n "$(find "$ROOT/bench/src" "$ROOT/fs-core/src" -newer "$BIN" -name '*.rs' | head -1)" ]; then
    echo "building bfsperf (release)..."
    (cd "$ROOT" && cargo build --release -q -p bench --bin bfsperf)
fi

echo "date:     $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "cpus:     $(nproc) ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'))"
echo "bypassfs: $(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD || echo '+changes')"
echo "results:  $RESULTS"

# --- two cores on the RAM backend -------------------------------------------------------
cores_row() { # NAME WORKLOAD MASK [EXTRA...]
    local name=$1 w=$2 mask=$3
    shift 3
    "$BIN" -c "$ROOT/bench/configs/malloc.json" --fs -q 32 -o 4096 -w "$w" -t "$RUNTIME" \
        -m "$mask" --fs-threads "$FS_THREADS" "$@" --output-json "$RESULTS/cores-$name-$mask.json" \
        >"$RESULTS/cores-$name-$mask.txt" 2>&1 || {
        echo "bfsperf failed for $name $mask; its output:" >&2
        cat "$RESULTS/cores-$name-$mask.txt" >&2
        return 1
    }
}
if [[ " $PARTS " == *" cores "* ]]; then
    echo
    echo "== two cores (RAM backend, 4 KiB direct, QD 32, ${RUNTIME}s a row), load $(load)"
    case "$FS_THREADS" in
        mask) echo "filesystem threads on the CPUs of -m: 0x1 is one core for everything" ;;
        *) echo "filesystem threads anywhere: 0x1 is one core for the job, the folder" \
            "runs wherever the scheduler puts it (may be the other core)" ;;
    esac
    for mask in 0x1 0x3; do
        cores_row randread randread "$mask"
        cores_row randwrite randwrite "$mask"
        if [ "$mask" = 0x3 ]; then
            cores_row randwrite-shared randwrite "$mask" --shared-file
        fi
    done
    python3 - "$RESULTS" <<'PY'
import json, os, sys
# cores: CPU time of the whole process over the run's time (the load of other work shows as
# less than the mask's cores); IOPS/core: IOPS per core-second it got.
print(f"  {'row':18s} {'mask':>4} {'IOPS':>9} {'p99':>9} {'max':>9} {'cores':>6} {'CPU/IO':>8} "
      f"{'IOPS/core':>10}")
for name in ("randread", "randwrite", "randwrite-shared"):
    for mask in ("0x1", "0x3"):
        p = f"{sys.argv[1]}/cores-{name}-{mask}.json"
        if not os.path.exists(p):
            continue
        d = json.load(open(p))
        t, c = d["total"], d.get("cpu", {})
        print(f"  {name:18s} {mask:>4} {t['iops'] / 1e3:8.1f}k {t['p99_latency_us']:7.0f}us "
              f"{t['max_latency_us'] / 1e3:7.1f}ms {c.get('cores', 0):6.2f} "
              f"{c.get('ns_per_io', 0):6.0f}ns "
              + (f"{t['iops'] / c['cores'] / 1e3:9.1f}k" if c.get('cores') else f"{'-':>10}"))
PY
    echo "load after: $(load)"
fi

# --- kernel filesystems -----------------------------------------------------------------
if [[ " $PARTS " == *" kernel "* ]]; then
    echo
    echo "== direct and buffered against the kernel, load $(load)"
    WORKLOADS="randread randwrite fdatasync-psync seqwrite seqread cachedread" \
        FSES=${FSES:-xfs ext4} RESULTS="$RESULTS/kernel" \
        "$ROOT/bench/scripts/vs-kernel-fs.sh" ${QUICK:+--quick} | tee "$RESULTS/kernel.txt"
fi
if [[ " $PARTS " == *" meta "* ]]; then
    echo
    echo "== small files against the kernel, load $(load)"
    FSES=${FSES:-xfs ext4} RESULTS="$RESULTS/meta" \
        "$ROOT/bench/scripts/vs-kernel-meta.sh" | tee "$RESULTS/meta.txt"
fi

# --- summary ----------------------------------------------------------------------------
echo
python3 - "$RESULTS" <<'PY'
import json, os, re, sys
results = sys.argv[1]
rows = []

def total(name, mask):
    p = f"{results}/cores-{name}-{mask}.json"
    if not os.path.exists(p):
        return None
    t = json.load(open(p))["total"]
    return t["iops"], t.get("p99_latency_us"), t.get("max_latency_us")

for name, want, label in [("randread", 1.8, "2 cores: randread, file per job"),
                          ("randwrite", 1.8, "2 cores: randwrite, file per job"),
                          ("randwrite-shared", 1.6, "2 cores: randwrite, one shared file")]:
    one = total(name.replace("-shared", ""), "0x1")
    two = total(name, "0x3")
    if one and two:
        rows.append((label, two[0] / one[0], want, two[2]))

def targets(path, header):
    """(row, ratio, target) from a kernel script's 'Targets (issue 23)' block."""
    if not os.path.exists(path):
        return
    on = False
    for line in open(path):
        if line.startswith("Targets ("):
            on = header in line
            continue
        m = on and re.match(r"\s+(\S+)\s+bypassfs/(\S+)\s+>=\s+([\d.]+):\s+([\d.]+)", line)
        if m:
            rows.append((f"{m.group(1)} x {m.group(2)}", float(m.group(4)), float(m.group(3)), None))

targets(f"{results}/kernel.txt", "issue 23")
meta = f"{results}/meta.txt"
want = {"xfs": {"create": 2, "stat": 2, "unlink": 2, "extract": 1.5},
        "ext4": {"create": 1.5, "stat": 1.5, "unlink": 1.5}}
if os.path.exists(meta):
    cols = None
    for line in open(meta):
        if line.startswith("row "):
            # The ratio columns are headed "x xfs", "x ext4", in this order.
            cols = re.findall(r"x (\w+)", line)
            continue
        parts = line.split()
        if cols and parts and parts[0] in ("create", "stat", "unlink", "extract"):
            # Operations a second carry no decimal point; the ratios come next, each with
            # two decimals, then the maximum latency.
            found = re.findall(r"(\d+\.\d+)", line)
            for fs, val in zip(cols, found):
                w = want.get(fs, {}).get(parts[0])
                if w:
                    rows.append((f"{parts[0]} x {fs}", float(val), float(w), None))

print("Issue 23, every target of this run:")
print(f"  {'row':40s} {'ratio':>7} {'target':>7}  verdict   max latency")
for label, x, want, mx in rows:
    verdict = "met" if x >= want else "NOT met"
    lat = f"{mx / 1e3:.1f} ms" if mx else "(in its table)"
    print(f"  {label:40s} {x:7.2f} {want:7.2f}  {verdict:8s}  {lat}")
if not rows:
    print("  (no part produced a ratio)")
PY
echo "raw outputs kept in $RESULTS"

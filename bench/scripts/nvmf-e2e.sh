#!/usr/bin/env bash
# bypassfs over NVMe/TCP, end to end (issue 22 item 4), on SPDK's own target.
#
# 1. Starts SPDK's nvmf_tgt (core TGT_CORE) serving a malloc bdev as the namespace of one
#    subsystem, NVMe/TCP on 127.0.0.1, configured through SPDK's scripts/rpc.py.
# 2. Measures, PASSES alternating pairs per workload, 4 KiB QD 32 randread and randwrite on
#    one core (CORE): `bfsperf --spdk --fs` (it formats a fresh bypassfs on the namespace and
#    runs on a file of it, direct I/O) and SPDK's `bdevperf` on the raw namespace, both
#    attaching it with bdev_nvme_attach_controller (trtype TCP) from the same JSON config.
#    Every row of every run must be non-zero with no failed I/O. Each cell is the median.
# 3. Checks the filesystem: a last `bfsperf --spdk --fs` randwrite run formats and
#    benchmarks it; then, each step a process of its own, fsck (clean), a tree of files
#    written and fsynced (buffered, direct, queued direct; links, rename, xattr), and a
#    remount that reads the tree back byte for byte (buffered and direct) and runs fsck
#    again (fs-core's `spdk_roundtrip` example).
# 4. Prints fs / raw for randread (target >= 0.8) and randwrite (target >= 0.5).
# The target, the temporary files and any hugepage files of the processes it started are
# removed on exit, whether it passed, failed or was interrupted.
#
# The config sets bdev_nvme_set_options {"enable_flush": true}: without it SPDK's NVMe bdev
# completes flushes without sending them, bypassfs refuses such a device's flushes, and
# formatting fails (the error says to set it).
#
# Needs SPDK (pkg-config spdk_bdev, or SPDK_DIR) and its source tree for rpc.py and bdevperf:
#   SPDK_DIR=/path/to/spdk bash bench/scripts/nvmf-e2e.sh
# Environment: SPDK_DIR (required), NVMF_TGT (default $SPDK_DIR/build/bin/nvmf_tgt),
# BDEVPERF (default $SPDK_DIR/build/examples/bdevperf), RUNTIME (seconds, 10), PASSES (3),
# QD (32), IO (4096), MALLOC_MB (256), CORE (0), TGT_CORE (1), PORT (first free from 4420),
# NO_HUGE (1: ordinary memory for every SPDK process; default: hugepages if enough are free).
# Exit status: 0 if every check passed (the ratios are reported, not enforced), 1 otherwise.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$ROOT/bench/scripts
RUNTIME=${RUNTIME:-10}
PASSES=${PASSES:-3}
QD=${QD:-32}
IO=${IO:-4096}
MALLOC_MB=${MALLOC_MB:-256}
CORE=${CORE:-0}
TGT_CORE=${TGT_CORE:-1}
NQN=nqn.2016-06.io.bypassfs:nvmf-e2e
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

if [ -z "${SPDK_DIR:-}" ] || [ ! -f "$SPDK_DIR/scripts/rpc.py" ]; then
    echo "nvmf-e2e: give SPDK_DIR=/path/to/spdk (a built SPDK source tree: scripts/rpc.py," \
        "build/examples/bdevperf)" >&2
    exit 2
fi
NVMF_TGT=${NVMF_TGT:-$SPDK_DIR/build/bin/nvmf_tgt}
BDEVPERF=${BDEVPERF:-$SPDK_DIR/build/examples/bdevperf}
for tool in "$NVMF_TGT" "$BDEVPERF"; do
    [ -x "$tool" ] || { echo "nvmf-e2e: $tool not found (build SPDK first)" >&2; exit 2; }
done
if libdir=$(pkg-config --variable=libdir spdk_bdev 2>/dev/null); then
    export LD_LIBRARY_PATH=$libdir:${LD_LIBRARY_PATH:-}
fi

WORK=$(mktemp -d /tmp/nvmf-e2e.XXXXXX)
SOCK=$WORK/spdk.sock
TGT_PID=
STARTED_PIDS=()

cleanup() {
    local rc=$?
    set +e
    local pid
    # An interrupted run leaves its initiator (bfsperf, bdevperf …) running: stop it first.
    for pid in "${STARTED_PIDS[@]}"; do
        [ "$pid" != "$TGT_PID" ] && kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    done
    if [ -n "$TGT_PID" ] && kill -0 "$TGT_PID" 2>/dev/null; then
        kill -INT "$TGT_PID"
        for _ in $(seq 50); do kill -0 "$TGT_PID" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$TGT_PID" 2>/dev/null && kill -KILL "$TGT_PID"
        wait "$TGT_PID" 2>/dev/null
    fi
    # DPDK names its hugepage files and runtime directory after the process (spdk_pid<PID>,
    # SPDK's default file prefix); a process that was killed leaves them behind.
    for pid in "${STARTED_PIDS[@]}"; do
        rm -f /dev/hugepages/spdk_pid"${pid}"map_* 2>/dev/null
        rm -rf /var/run/dpdk/spdk_pid"${pid}" 2>/dev/null
    done
    rm -rf "$WORK"
    [ "$rc" -ne 0 ] && echo "nvmf-e2e: FAILED (exit $rc); target stopped, files removed" >&2
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Memory: the target holds the malloc bdev; each initiator process reserves its own.
free_mib=$(awk '/^HugePages_Free:/ {f=$2} /^Hugepagesize:/ {s=$2} END {print int(f*s/1024)}' \
    /proc/meminfo)
TGT_MEM=$((MALLOC_MB + 256))
if [ -z "${NO_HUGE:-}" ]; then
    NO_HUGE=$([ "$free_mib" -ge $((TGT_MEM + 768)) ] && echo 0 || echo 1)
fi
TGT_MEM_ARGS=(-s "$TGT_MEM")
INI_MEM_ARGS=()
if [ "$NO_HUGE" = 1 ]; then
    TGT_MEM_ARGS+=(--no-huge)
    INI_MEM_ARGS=(--no-huge -s 512)
fi
echo "nvmf-e2e: hugepages free ${free_mib} MiB; $([ "$NO_HUGE" = 1 ] && echo "ordinary memory (--no-huge)" || echo hugepages)"
echo "nvmf-e2e: load before the run: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"

echo "nvmf-e2e: building bfsperf and spdk_roundtrip (release, feature spdk)"
(cd "$ROOT" && cargo build -q --release -p bench --features spdk &&
    cargo build -q --release -p fs-core --features spdk --example spdk_roundtrip)
BFSPERF=$TARGET_DIR/release/bfsperf
ROUNDTRIP=$TARGET_DIR/release/examples/spdk_roundtrip

if [ -z "${PORT:-}" ]; then
    PORT=$(python3 - <<'PY'
import socket
for port in range(4420, 4520):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        print(port)
        break
    except OSError:
        pass
    finally:
        s.close()
PY
)
fi

# 1. The target.
"$NVMF_TGT" -m "$(printf '0x%x' $((1 << TGT_CORE)))" "${TGT_MEM_ARGS[@]}" -r "$SOCK" \
    >"$WORK/nvmf_tgt.log" 2>&1 &
TGT_PID=$!
STARTED_PIDS+=("$TGT_PID")
for _ in $(seq 100); do
    [ -S "$SOCK" ] && break
    kill -0 "$TGT_PID" 2>/dev/null || { cat "$WORK/nvmf_tgt.log"; exit 1; }
    sleep 0.1
done
rpc() { python3 "$SPDK_DIR/scripts/rpc.py" -s "$SOCK" -t 30 "$@" >/dev/null; }
rpc framework_wait_init
rpc nvmf_create_transport -t TCP
rpc bdev_malloc_create -b Malloc0 "$MALLOC_MB" 4096
rpc nvmf_create_subsystem "$NQN" -a -s BYPASSFS0000000001
rpc nvmf_subsystem_add_ns "$NQN" Malloc0
rpc nvmf_subsystem_add_listener "$NQN" -t tcp -a 127.0.0.1 -s "$PORT"
echo "nvmf-e2e: nvmf_tgt (pid $TGT_PID, core $TGT_CORE) serves Malloc0 (${MALLOC_MB} MiB)" \
    "as $NQN on 127.0.0.1:$PORT"

CONFIG=$WORK/initiator.json
cat >"$CONFIG" <<EOF
{"subsystems": [{"subsystem": "bdev", "config": [
  {"method": "bdev_nvme_set_options", "params": {"enable_flush": true}},
  {"method": "bdev_nvme_attach_controller",
   "params": {"name": "Nvme0", "trtype": "TCP", "adrfam": "IPv4", "traddr": "127.0.0.1",
              "trsvcid": "$PORT", "subnqn": "$NQN"}}
]}]}
EOF
BDEV=Nvme0n1

# Runs "$@" in the background (so that its pid is known for the cleanup), output to $1.
run_logged() {
    local out=$1
    shift
    "$@" >"$out" 2>&1 &
    local pid=$!
    STARTED_PIDS+=("$pid")
    if ! wait "$pid"; then
        echo "nvmf-e2e: failed: $*" >&2
        grep -v '^\[20' "$out" | tail -20 >&2
        exit 1
    fi
}
PIN=()
command -v taskset >/dev/null && PIN=(taskset -c "$CORE")
run_raw() { # workload pass
    echo "== $1 pass $2: bdevperf (raw namespace)"
    run_logged "$WORK/raw-$1-$2.txt" "$BDEVPERF" --json "$CONFIG" -q "$QD" -o "$IO" -w "$1" \
        -t "$RUNTIME" -m "$(printf '0x%x' $((1 << CORE)))" "${INI_MEM_ARGS[@]}"
}
run_fs() { # workload pass [seconds]
    echo "== $1 pass $2: bfsperf --spdk --fs (fresh bypassfs, direct)"
    run_logged "$WORK/fs-$1-$2.txt" "${PIN[@]}" "$BFSPERF" --spdk --fs -c "$CONFIG" -T "$BDEV" \
        -q "$QD" -o "$IO" -w "$1" -t "${3:-$RUNTIME}" "${INI_MEM_ARGS[@]}"
}

# 2. Measurements, pairs alternating which tool goes first.
for w in randread randwrite; do
    for p in $(seq 1 "$PASSES"); do
        if [ $((p % 2)) -eq 1 ]; then run_raw "$w" "$p"; run_fs "$w" "$p"
        else run_fs "$w" "$p"; run_raw "$w" "$p"; fi
    done
done

# 3. Format + benchmark, then fsck, write, remount + read back + fsck, each its own process.
run_fs randwrite final 3
echo "== checks on the filesystem the last run left"
run_logged "$WORK/fsck1.txt" "$ROUNDTRIP" -c "$CONFIG" -b "$BDEV" "${INI_MEM_ARGS[@]}" fsck
run_logged "$WORK/write.txt" "$ROUNDTRIP" -c "$CONFIG" -b "$BDEV" "${INI_MEM_ARGS[@]}" write /e2e
run_logged "$WORK/check.txt" "$ROUNDTRIP" -c "$CONFIG" -b "$BDEV" "${INI_MEM_ARGS[@]}" check /e2e
grep -h '^spdk_roundtrip' "$WORK/fsck1.txt" "$WORK/write.txt" "$WORK/check.txt"

# 4. Every row non-zero, no failed I/O; the ratios.
python3 - "$WORK" "$PASSES" "$HERE" "$QD" "$IO" "$RUNTIME" <<'PY'
import statistics, sys
work, passes, here = sys.argv[1], int(sys.argv[2]), sys.argv[3]
qd, io, runtime = sys.argv[4:7]
sys.path.insert(0, here)
import bdevperf_table as bt

bt.check(f"{work}/fs-randwrite-final.txt")
targets = {"randread": 0.8, "randwrite": 0.5}
print(f"\nNVMe/TCP (nvmf_tgt, malloc namespace, 127.0.0.1), {io} B QD {qd}, {runtime} s, "
      f"one core, median of {passes} alternating passes:")
print(f"{'workload':10} {'raw bdevperf':>13} {'bypassfs --fs':>14} {'fs/raw':>7}  target")
for w, target in targets.items():
    raw = [bt.check(f"{work}/raw-{w}-{p}.txt") for p in range(1, passes + 1)]
    fs = [bt.check(f"{work}/fs-{w}-{p}.txt") for p in range(1, passes + 1)]
    r, f = statistics.median(raw), statistics.median(fs)
    verdict = "meets" if f / r >= target else "MISSES"
    print(f"{w:10} {r:13.0f} {f:14.0f} {f / r:7.2f}  >= {target} ({verdict})")
    print(f"{'':10} passes raw {', '.join(f'{x:.0f}' for x in raw)}; "
          f"fs {', '.join(f'{x:.0f}' for x in fs)}")
print("every row non-zero, no failed I/O; mkfs, bench, fsck clean, remount read back: PASS")
PY
echo "nvmf-e2e: load after the run: $(cut -d' ' -f1-3 /proc/loadavg)"

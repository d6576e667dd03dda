#!/usr/bin/env bash
# bfsperf's io_uring bdev against fio's io_uring engine, same file, same load, same run.
#
# Both do 4 KiB O_DIRECT I/O at QD 32 on one thread to a file in /dev/shm for RUNTIME
# seconds, randread then randwrite. Target: bfsperf IOPS >= 0.95 x fio IOPS.
# Needs bdev_uring_create support in the config reader (bdev::config).
#
# Note: tmpfs has no non-blocking direct I/O, so io_uring hands every request to a kernel
# worker thread (iou-wrk): both tools need a second idle core. On a shared machine use
# REPEAT and read the best and median ratios.
#
# Environment: FILE (default /dev/shm/bfsperf-vs-fio.img; created, filled and removed unless
# it already exists), SIZE (default 1G), DEPTH (32), RUNTIME (10), WORKLOADS ("randread
# randwrite"), REPEAT (alternating fio/bfsperf pairs per workload, default 1).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
FILE=${FILE:-/dev/shm/bfsperf-vs-fio.img}
SIZE=${SIZE:-1G}
DEPTH=${DEPTH:-32}
RUNTIME=${RUNTIME:-10}
WORKLOADS=${WORKLOADS:-randread randwrite}
REPEAT=${REPEAT:-1}
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/bfsperf
OUT=$(mktemp -d)
CREATED=""
cleanup() {
    rm -rf "$OUT"
    if [ -n "$CREATED" ]; then rm -f "$FILE"; fi
}
trap cleanup EXIT

(cd "$ROOT" && cargo build --release -p bench)

if ! command -v fio >/dev/null; then
    apt-get install -y fio || { apt-get update && apt-get install -y fio; }
fi

if [ ! -e "$FILE" ]; then
    BYTES=$(numfmt --from=iec "$SIZE")
    # Written, not sparse: reads of holes in tmpfs cost nothing and would flatter both tools.
    dd if=/dev/zero of="$FILE" bs=1M count=$((BYTES >> 20)) status=none
    CREATED=1
fi

cat >"$OUT/uring.json" <<EOF
{"subsystems": [{"subsystem": "bdev", "config": [
  {"method": "bdev_uring_create",
   "params": {"filename": "$FILE", "name": "Uring0", "block_size": 4096}}]}]}
EOF

for i in $(seq 1 "$REPEAT"); do
    for w in $WORKLOADS; do
        fio --name="$w" --filename="$FILE" --ioengine=io_uring --direct=1 --rw="$w" --bs=4k \
            --iodepth="$DEPTH" --numjobs=1 --runtime="$RUNTIME" --time_based \
            --output-format=json --output="$OUT/fio-$w-$i.json"
        "$BIN" -c "$OUT/uring.json" -q "$DEPTH" -o 4096 -w "$w" -t "$RUNTIME" \
            --output-json "$OUT/bfsperf-$w-$i.json"
    done
done

python3 - "$OUT" "$REPEAT" $WORKLOADS <<'PY'
import json, statistics, sys
out, repeat, workloads = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
print()
for w in workloads:
    pairs = []
    for i in range(1, repeat + 1):
        job = json.load(open(f"{out}/fio-{w}-{i}.json"))["jobs"][0]
        fio = job["read" if "read" in w else "write"]["iops"]
        ours = json.load(open(f"{out}/bfsperf-{w}-{i}.json"))["total"]["iops"]
        pairs.append((ours, fio))
        print(f"{w:10s} bfsperf {ours:.0f} IOPS  fio {fio:.0f} IOPS  ratio {ours / fio:.2f} (target >= 0.95)")
    if repeat > 1:
        ratios = [o / f for o, f in pairs]
        best = max(o for o, _ in pairs) / max(f for _, f in pairs)
        print(f"{w:10s} ratio of medians {statistics.median(o for o, _ in pairs) / statistics.median(f for _, f in pairs):.2f}, "
              f"ratio of bests {best:.2f}, median ratio {statistics.median(ratios):.2f} over {repeat} pairs")
PY

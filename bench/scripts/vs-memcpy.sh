#!/usr/bin/env bash
# bfsperf on a RAM bdev against this machine's memcpy limit, in the same run.
#
# The memcpy limit is one thread copying random 4 KiB blocks out of 1 GiB of DMA memory in a
# tight loop; a RAM bdev's 4 KiB randread at QD 128 cannot beat it. Target: ratio >= 0.85
# (SPDK's bdevperf on its malloc bdev: 0.81).
#
# The bdev is prefilled (--prefill): memory that was never written reads as the kernel's
# shared zero page, which stays in cache and would make the bdev look faster than memcpy.
# Each side reports what memory it really ran on (hugetlb, transparent hugepages): bdev
# falls back to ordinary pages per allocation when the hugepage pool is short.
#
# Environment: RUNTIME (seconds per run, default 5), REPEAT (alternating pairs, default 1;
# on a busy machine use more and read best bdev / best limit), CONFIG (default
# bench/configs/malloc.json).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
RUNTIME=${RUNTIME:-5}
REPEAT=${REPEAT:-1}
CONFIG=${CONFIG:-$ROOT/bench/configs/malloc.json}
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/bfsperf
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

(cd "$ROOT" && cargo build --release -p bench)

for i in $(seq 1 "$REPEAT"); do
    "$BIN" --memcpy-limit -o 4096 -t "$RUNTIME" --output-json "$OUT/memcpy-$i.json"
    "$BIN" -c "$CONFIG" -q 128 -o 4096 -w randread -t "$RUNTIME" --prefill \
        --output-json "$OUT/bdev-$i.json"
done

python3 - "$OUT" "$REPEAT" <<'PY'
import json, statistics, sys
out, repeat = sys.argv[1], int(sys.argv[2])

def backing(mem):
    """What memory a run used, from bfsperf's /proc/self/smaps_rollup summary."""
    if not mem:
        return "unknown"
    return f"{mem['hugetlb_kib'] >> 10} MiB hugetlb, {mem['thp_kib'] >> 10} MiB THP"

pairs = []
for i in range(1, repeat + 1):
    m = json.load(open(f"{out}/memcpy-{i}.json"))["memcpy_limit"]
    b = json.load(open(f"{out}/bdev-{i}.json"))
    pairs.append((m["iops"], b["total"]["iops"], backing(m["memory"]), backing(b["memory"])))
print()
for n, (m, b, mem_m, mem_b) in enumerate(pairs, 1):
    print(f"run {n}: memcpy limit {m:10.0f} copies/s  bfsperf randread {b:10.0f} IOPS  "
          f"ratio {b / m:.2f} (target >= 0.85)")
    print(f"       memory: memcpy {mem_m}; bdev {mem_b}")
if repeat > 1:
    # Interference only slows a run down, so each side's best is its least disturbed run; the
    # best single pair ratio is not (a disturbed limit run inflates it).
    ratios = [b / m for m, b, _, _ in pairs]
    best = max(b for _, b, _, _ in pairs) / max(m for m, _, _, _ in pairs)
    print(f"ratio: best bdev / best limit {best:.2f}, median of pairs {statistics.median(ratios):.2f} "
          f"over {repeat} pairs (target >= 0.85)")
PY

#!/usr/bin/env bash
# bfsperf on a RAM bdev against this machine's memcpy limit, in the same run.
#
# The memcpy limit is one thread copying random 4 KiB blocks out of 1 GiB of DMA memory in a
# tight loop; a RAM bdev's 4 KiB randread at QD 128 cannot beat it. Target: ratio >= 0.85
# (SPDK's bdevperf on its malloc bdev: 0.81).
#
# The bdev is prefilled (--prefill): memory that was never written reads as the kernel's
# shared zero page, which stays in cache and would make the bdev look faster than memcpy.
#
# Environment: RUNTIME (seconds per run, default 5), REPEAT (alternating pairs, default 1;
# on a busy machine use more and read the best pair), CONFIG (default bench/configs/malloc.json).
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

python3 - "$OUT" "$REPEAT" <<'EOF'
import json, statistics, sys
out, repeat = sys.argv[1], int(sys.argv[2])
pairs = []
for i in range(1, repeat + 1):
    m = json.load(open(f"{out}/memcpy-{i}.json"))["memcpy_limit"]
    b = json.load(open(f"{out}/bdev-{i}.json"))["total"]
    pairs.append((m["iops"], b["iops"], m["hugepages"]))
print()
for n, (m, b, huge) in enumerate(pairs, 1):
    print(f"run {n}: memcpy limit {m:12.0f} copies/s  bfsperf randread {b:12.0f} IOPS  "
          f"ratio {b / m:.2f} (target >= 0.85)  hugepages: {'yes' if huge else 'no'}")
if repeat > 1:
    ratios = [b / m for m, b, _ in pairs]
    print(f"ratio: median {statistics.median(ratios):.2f}, best {max(ratios):.2f} over {repeat} pairs")
EOF

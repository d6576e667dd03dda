#!/usr/bin/env bash
# bypassfs against kernel XFS and ext4 on small-file metadata (issue 23, point 6): create +
# write + close, stat, unlink of small files, and a tree extracted then synced; same
# machine, same run; prints each row's operations a second and the ratios.
#
# Every system runs on a file in /dev/shm:
#   - bypassfs: `bfsperf --fs --meta` on its io_uring backend (bdev::uring, O_DIRECT) over the
#     file (a JSON config with SPDK's method name bdev_uring_create; SPDK is not involved),
#     or on its RAM backend with BACKEND=ram; default mount options (group commit: namespace
#     operations durable at the next commit, as on XFS and ext4) but a page cache of
#     META_CACHE (default 512m, half of it allowed dirty): the kernel's dirty_background_ratio
#     (10 % of a few GiB here) keeps the workload's data in memory until the extract's sync,
#     and so does this; META_CACHE=0 keeps fs-core's defaults (64 MiB, 16 MiB dirty);
#   - xfs/ext4: a loop device over the file with --direct-io=on and --sector-size 4096,
#     default mkfs options (ext4 without lazy init) and mount options; driven by
#     bench/scripts/meta.c (compiled here with cc -O2), which makes the same calls through
#     system calls.
# Rows (one thread; FILES files of BYTES bytes; a tree of DIRS x PER_DIR files):
#   create   open(O_CREAT) + write BYTES + close, FILES files in one directory
#   stat     stat of each of them
#   unlink   unlink of each of them
#   extract  DIRS directories of PER_DIR files each (created, written, closed, as tar x
#            does), then one sync (syncfs; bypassfs: Filesystem::sync) counted in the time
# Targets (issue 23): create, stat, unlink >= 2 x XFS and >= 1.5 x ext4; extract >= 1.5 x XFS.
#
# Needs root (losetup, mkfs, mount) and a release bfsperf (built here if missing).
#
# Usage: bench/scripts/vs-kernel-meta.sh
# Environment: SIZE (backing file per system, default 2G), FILES (default 20000), BYTES
# (default 4096), DIRS (default 100), PER_DIR (default 200), FSES (default "xfs ext4"),
# REPEAT (passes, default 1; each cell shows the best pass), BACKEND (uring or ram, default
# uring), META_CACHE (see above), LOOKUP_CACHE (entries of bypassfs's name and attribute
# caches, 0 to measure without them; default fs-core's), RESULTS (directory to keep the raw
# outputs in; default a temporary one).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SIZE=${SIZE:-2G}
FILES=${FILES:-20000}
BYTES=${BYTES:-4096}
DIRS=${DIRS:-100}
PER_DIR=${PER_DIR:-200}
FSES=${FSES:-xfs ext4}
REPEAT=${REPEAT:-1}
BACKEND=${BACKEND:-uring}
META_CACHE=${META_CACHE:-512m}
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/bfsperf
SHM=/dev/shm

SCRIPT=vs-kernel-meta.sh
# shellcheck source=bench/scripts/kernel-loop.sh
. "$ROOT/bench/scripts/kernel-loop.sh"

[ "$(id -u)" -eq 0 ] || die "must run as root (loop devices, mkfs, mount): sudo $0"
case "$BACKEND" in uring|ram) ;; *) die "BACKEND takes uring or ram, not '$BACKEND'" ;; esac
if [ -n "${RESULTS:-}" ]; then
    mkdir -p "$RESULTS"
else
    RESULTS_TMP=$(mktemp -d /tmp/vs-kernel-meta.XXXXXX)
    RESULTS=$RESULTS_TMP
fi

if [ ! -x "$BIN" ]; then
    log "building bfsperf (release)"
    (cd "$ROOT" && cargo build --release -p bench --bin bfsperf)
fi
META="$RESULTS/meta"
cc -O2 -o "$META" "$ROOT/bench/scripts/meta.c"

load() { cut -d' ' -f1-3 /proc/loadavg; }

# Written out in full, not fallocated (see vs-kernel-fs.sh: first writes to never-touched
# tmpfs pages cost a host fault on this VM).
new_backing() {
    CUR_BACKING=$1
    rm -f "$1"
    dd if=/dev/zero of="$1" bs=1M count="$(($(numfmt --from=iec "$SIZE") >> 20))" status=none
}

run_kernel() {  # $1: fs, $2: pass
    local fs=$1 pass=$2
    new_backing "$SHM/vs-kernel-meta-$fs.img"
    CUR_LOOP=$(losetup --find --show --direct-io=on --sector-size 4096 "$CUR_BACKING")
    case "$fs" in
        xfs)  mkfs.xfs -f -q "$CUR_LOOP" ;;
        ext4) mkfs.ext4 -F -q -E lazy_itable_init=0,lazy_journal_init=0 "$CUR_LOOP" ;;
        *) die "unknown filesystem $fs (FSES takes xfs, ext4)" ;;
    esac
    CUR_MNT=$(mktemp -d /tmp/vs-kernel-meta-mnt.XXXXXX)
    mount -t "$fs" "$CUR_LOOP" "$CUR_MNT"
    log "$fs pass $pass (load $(load))"
    "$META" "$CUR_MNT" "$FILES" "$BYTES" "$DIRS" "$PER_DIR" >"$RESULTS/$fs-$pass.txt"
    echo "$fs pass $pass: load after $(load)" >>"$RESULTS/notes.txt"
    teardown_current
}

run_bypassfs() {  # $1: pass
    local pass=$1 config
    if [ "$BACKEND" = ram ]; then
        config="$ROOT/bench/configs/malloc.json"
    else
        new_backing "$SHM/vs-kernel-meta-bypassfs.img"
        config="$RESULTS/uring.json"
        cat >"$config" <<JSON
{"subsystems": [{"subsystem": "bdev", "config": [
  {"method": "bdev_uring_create",
   "params": {"filename": "$CUR_BACKING", "name": "Uring0", "block_size": 4096}}]}]}
JSON
    fi
    local cache_arg=()
    [ "$META_CACHE" = 0 ] || cache_arg=(--meta-cache "$META_CACHE")
    [ -z "${LOOKUP_CACHE:-}" ] || cache_arg+=(--meta-lookup-cache "$LOOKUP_CACHE")
    log "bypassfs ($BACKEND) pass $pass (load $(load))"
    "$BIN" -c "$config" --fs --meta -o "$BYTES" --meta-files "$FILES" \
        --tree "${DIRS}x${PER_DIR}" "${cache_arg[@]}" --output-json "$RESULTS/bypassfs-$pass.json" >&2
    echo "bypassfs pass $pass: load after $(load)" >>"$RESULTS/notes.txt"
    teardown_current
}

echo "date:     $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "kernel:   $(uname -r)"
echo "cpus:     $(nproc) ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'))"
echo "bypassfs: $(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD || echo '+changes'), backend $BACKEND"
echo "settings: FILES=$FILES BYTES=$BYTES tree ${DIRS}x${PER_DIR} SIZE=$SIZE REPEAT=$REPEAT META_CACHE=$META_CACHE LOOKUP_CACHE=${LOOKUP_CACHE:-default}"
echo "load:     $(load) (before)"
for pass in $(seq 1 "$REPEAT"); do
    run_bypassfs "$pass"
    for fs in $FSES; do
        run_kernel "$fs" "$pass"
    done
done
echo "load:     $(load) (after)"

python3 - "$RESULTS" "$REPEAT" "$FSES" <<'PY'
import json, os, sys
results, repeat, fses = sys.argv[1], int(sys.argv[2]), sys.argv[3].split()
rows = ["create", "stat", "unlink", "extract"]
target = {"xfs": {"create": 2, "stat": 2, "unlink": 2, "extract": 1.5},
          "ext4": {"create": 1.5, "stat": 1.5, "unlink": 1.5}}
best, worst = {}, {}
for i in range(1, repeat + 1):
    p = f"{results}/bypassfs-{i}.json"
    if os.path.exists(p):
        for r in json.load(open(p))["results"]:
            k = ("bypassfs", r["name"])
            best[k] = max(best.get(k, 0), r["iops"])
            worst[k] = max(worst.get(k, 0), r["max_latency_us"])
    for fs in fses:
        p = f"{results}/{fs}-{i}.txt"
        if os.path.exists(p):
            for line in open(p):
                name, ops, secs, max_us = line.split()
                k = (fs, name)
                best[k] = max(best.get(k, 0), int(ops) / float(secs))
                worst[k] = max(worst.get(k, 0), float(max_us))
systems = ["bypassfs"] + fses
print()
print(f"{'row':<9}" + "".join(f"{s + ' ops/s':>16}" for s in systems)
      + "".join(f"{'x ' + fs:>10}" for fs in fses) + f"{'max ms (bfs)':>14}")
for row in rows:
    line = f"{row:<9}"
    for s in systems:
        v = best.get((s, row))
        line += f"{v:>16,.0f}" if v else f"{'-':>16}"
    b = best.get(("bypassfs", row))
    for fs in fses:
        k = best.get((fs, row))
        if b and k:
            want = target.get(fs, {}).get(row)
            mark = "" if want is None else (" ok" if b / k >= want else " <")
            line += f"{b / k:>7.2f}{mark:<3}"
        else:
            line += f"{'-':>10}"
    w = worst.get(("bypassfs", row))
    line += f"{w / 1e3:>14.2f}" if w else f"{'-':>14}"
    print(line)
print("\nok / <: the issue's target met or not (create/stat/unlink >= 2 x XFS and >= 1.5 x ext4;"
      " extract >= 1.5 x XFS)")
PY

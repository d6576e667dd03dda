#!/usr/bin/env bash
# SQLite on bypassfs against SQLite on XFS and ext4 (issue 24): SQLite's own speedtest1
# and single-row autocommit transactions, same SQLite library and options on every side.
#
# Systems, each on a file in /dev/shm:
#   - bypassfs: the VFS of sqlite/ (`--vfs bypassfs`) over the file, on bypassfs's own
#     io_uring backend (O_DIRECT), formatted afresh for each run;
#   - xfs, ext4: SQLite's default unix VFS on the kernel filesystem on a loop device over
#     the file (--direct-io=on --sector-size 4096, default mkfs and mount options, as
#     vs-kernel-fs.sh), the database deleted before each run.
# Workloads:
#   speedtest1  test/speedtest1.c of the Debian source package of the installed
#               libsqlite3-dev, unmodified, linked with that libsqlite3 and with
#               sqlite/tools/preinit.c (registers the VFS; sets PRAGMA synchronous, which
#               speedtest1 has no option for), `--size SIZE` in journal_mode WAL and DELETE
#               with synchronous FULL and NORMAL; its TOTAL (the sum of its tests' wall
#               times). Target: bypassfs <= 0.9 x XFS in every combination.
#   txbench     TX single-row INSERTs, each its own transaction, synchronous=FULL, in WAL
#               and DELETE (sqlite/tools/txbench.c). Target: >= 2 x XFS's transactions/s.
# Each cell is the best of REPEAT passes (interference only ever slows a run down).
#
# Usage: bench/scripts/sqlite-speedtest.sh [--quick]
# Environment: SIZE (speedtest1 --size, default 100; --quick 10), TX (default 10000;
# --quick 1000), REPEAT (default 3; --quick 1), FSES (default "bypassfs xfs ext4"),
# IMAGE_SIZE (each backing file, default 4G); BYPASSFS_LIB and SQLITE_BUILD as
# sqlite/Makefile says.
# Needs root for xfs and ext4 (losetup, mkfs, mount) and target/release/libbypassfs.so
# (cargo build --release -p bypassfs --lib --no-default-features).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD

QUICK=""
for arg in "$@"; do
  case $arg in
    --quick) QUICK=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "sqlite-speedtest.sh: unknown argument '$arg' (only --quick)" >&2; exit 2 ;;
  esac
done
SIZE=${SIZE:-${QUICK:+10}}; SIZE=${SIZE:-100}
TX=${TX:-${QUICK:+1000}}; TX=${TX:-10000}
REPEAT=${REPEAT:-${QUICK:+1}}; REPEAT=${REPEAT:-3}
FSES=${FSES:-bypassfs xfs ext4}
IMAGE_SIZE=${IMAGE_SIZE:-4G}

log() { echo "sqlite-speedtest: $*" >&2; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

speedtest1_src=$(sqlite/fetch-speedtest1.sh)
make -s -C sqlite all speedtest1 SPEEDTEST1_SRC="$speedtest1_src" >/dev/null
B=$ROOT/sqlite/${SQLITE_BUILD:-build}

WORK=$(mktemp -d /dev/shm/bfs-sqlite-bench.XXXXXX)
declare -A LOOP MNT
cleanup() {
  for fs in "${!MNT[@]}"; do mountpoint -q "${MNT[$fs]}" && umount "${MNT[$fs]}"; done
  for fs in "${!LOOP[@]}"; do losetup -d "${LOOP[$fs]}" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for fs in $FSES; do
  truncate -s "$IMAGE_SIZE" "$WORK/$fs.img"
  case $fs in
    bypassfs) ;;
    xfs|ext4)
      LOOP[$fs]=$(losetup --find --show --direct-io=on --sector-size 4096 "$WORK/$fs.img")
      if [ "$fs" = xfs ]; then mkfs.xfs -f -q "${LOOP[$fs]}"
      else mkfs.ext4 -F -q -E lazy_itable_init=0,lazy_journal_init=0 "${LOOP[$fs]}"; fi
      MNT[$fs]=$WORK/$fs.mnt
      mkdir -p "${MNT[$fs]}"
      mount -t "$fs" "${LOOP[$fs]}" "${MNT[$fs]}"
      log "$fs on ${LOOP[$fs]} (loop dio $(cat "/sys/block/$(basename "${LOOP[$fs]}")/loop/dio"))" ;;
    *) echo "sqlite-speedtest.sh: unknown filesystem $fs" >&2; exit 2 ;;
  esac
done

# run FS PROGRAM ARGS... with the database path DB substituted: on bypassfs through the
# VFS over a freshly formatted image, elsewhere on the default VFS in the mount.
run_on() {
  local fs=$1; shift
  local args=() a
  for a in "$@"; do
    if [ "$a" = DB ]; then
      if [ "$fs" = bypassfs ]; then a=/bench.db; else a=${MNT[$fs]}/bench.db; fi
    fi
    args+=("$a")
  done
  if [ "$fs" = bypassfs ]; then
    BFS_SQLITE_DEVICE=$WORK/bypassfs.img BFS_SQLITE_FORMAT=1 "${args[0]}" --vfs bypassfs "${args[@]:1}"
  else
    rm -f "${MNT[$fs]}"/bench.db*
    "${args[@]}"
  fi
}

best_min() { sort -g | head -n1; }
best_max() { sort -g | tail -n1; }

log "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernel $(uname -r); SQLite $(sqlite3 --version | cut -d' ' -f1); load $(load)"
declare -A ST TPS
for pass in $(seq "$REPEAT"); do
  for mode in wal delete; do
    for sync in FULL NORMAL; do
      for fs in $FSES; do
        t=$(BFS_SQLITE_SYNCHRONOUS=$sync run_on "$fs" "$B/speedtest1" --journal "$mode" --size "$SIZE" DB |
            awk '/TOTAL/ { sub(/s$/, "", $NF); print $NF }')
        [ -n "$t" ] || { echo "sqlite-speedtest.sh: speedtest1 on $fs printed no TOTAL" >&2; exit 1; }
        log "pass $pass speedtest1 $fs $mode $sync: ${t}s (load $(load))"
        ST[$fs/$mode/$sync]+="$t "
      done
    done
    for fs in $FSES; do
      tps=$(run_on "$fs" "$B/txbench" DB "$mode" "$TX" | sed 's/.*tps=//')
      [ -n "$tps" ] || { echo "sqlite-speedtest.sh: txbench on $fs printed no rate" >&2; exit 1; }
      log "pass $pass txbench $fs $mode: $tps tx/s (load $(load))"
      TPS[$fs/$mode]+="$tps "
    done
  done
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
has() { [[ " $FSES " == *" $1 "* ]]; }
# sep N: a Markdown table's separator row for N label columns and the value columns.
sep() {
  local n=$1 fs
  for fs in $FSES; do n=$((n + 1)); done
  has bypassfs && has xfs && n=$((n + 1))
  has bypassfs && has ext4 && n=$((n + 1))
  printf '|'; for _ in $(seq "$n"); do printf ' --- |'; done; echo
}

echo
echo "speedtest1 --size $SIZE, TOTAL seconds (best of $REPEAT; lower is better)"
printf '| journal | synchronous |'; for fs in $FSES; do printf ' %s |' "$fs"; done
has bypassfs && has xfs && printf ' bypassfs / xfs (target <= 0.9) |'
has bypassfs && has ext4 && printf ' bypassfs / ext4 |'
echo
sep 2
for mode in wal delete; do
  for sync in FULL NORMAL; do
    printf '| %s | %s |' "${mode^^}" "$sync"
    for fs in $FSES; do printf ' %s |' "$(tr ' ' '\n' <<<"${ST[$fs/$mode/$sync]}" | grep . | best_min)"; done
    b=$(tr ' ' '\n' <<<"${ST[bypassfs/$mode/$sync]:-}" | grep . | best_min || true)
    if has bypassfs && has xfs; then printf ' %s |' "$(ratio "$b" "$(tr ' ' '\n' <<<"${ST[xfs/$mode/$sync]}" | grep . | best_min)")"; fi
    if has bypassfs && has ext4; then printf ' %s |' "$(ratio "$b" "$(tr ' ' '\n' <<<"${ST[ext4/$mode/$sync]}" | grep . | best_min)")"; fi
    echo
  done
done
echo
echo "$TX single-row autocommit transactions, synchronous=FULL, transactions/s (best of $REPEAT; higher is better)"
printf '| journal |'; for fs in $FSES; do printf ' %s |' "$fs"; done
has bypassfs && has xfs && printf ' bypassfs / xfs (target >= 2) |'
has bypassfs && has ext4 && printf ' bypassfs / ext4 |'
echo
sep 1
for mode in wal delete; do
  printf '| %s |' "${mode^^}"
  for fs in $FSES; do printf ' %s |' "$(tr ' ' '\n' <<<"${TPS[$fs/$mode]}" | grep . | best_max)"; done
  b=$(tr ' ' '\n' <<<"${TPS[bypassfs/$mode]:-}" | grep . | best_max || true)
  if has bypassfs && has xfs; then printf ' %s |' "$(ratio "$b" "$(tr ' ' '\n' <<<"${TPS[xfs/$mode]}" | grep . | best_max)")"; fi
  if has bypassfs && has ext4; then printf ' %s |' "$(ratio "$b" "$(tr ' ' '\n' <<<"${TPS[ext4/$mode]}" | grep . | best_max)")"; fi
  echo
done
echo
echo "load at the end: $(load)"

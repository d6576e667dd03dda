#!/usr/bin/env bash
# Crash safety of a real client: SQLite on bypassfs (the VFS in sqlite/) writes numbered
# transactions and prints each number once COMMIT returned; the writer is killed with
# SIGKILL at a random moment (during mount, open, recovery or writing), then a fresh
# process mounts the device again and checks that PRAGMA integrity_check is ok, that every
# transaction reported committed is present, and that none is present in part.
# Alternates journal_mode=WAL and DELETE (two databases), synchronous=FULL.
#
#   bench/scripts/sqlite-crash.sh [--iterations N] [--seed S] [--image PATH] [--image-size SIZE]
#
# The image (default 2G, as truncate(1) spells sizes) must hold what the writers commit
# between the kills: about 10 MB a kill since autocommit got faster (with a release
# library; a debug one writes about a tenth of that). On a smaller image the writer ends
# with "database or disk is full" and the script fails there: the volume is full, it still
# mounts and checks clean. (Before the metadata reserve, docs/decisions/metadata-reserve.md,
# such a volume, its free space left in pieces under a node's 16 KiB, stopped mounting
# read-write instead: ENOSPC at the replay's commit, e.g. --image-size 96M --seed 83597
# with a debug library at kill 53.)
#
# The seed fixes the kill delays and the writers' payload sizes; prints it, and the line to
# rerun with it. Exits 1 at the first failed check. Builds sqlite/ if needed (which needs
# target/release/libbypassfs.so: cargo build --release -p bypassfs --lib; or set
# BYPASSFS_LIB and SQLITE_BUILD as sqlite/Makefile says).
set -euo pipefail
cd "$(dirname "$0")/../.."

iterations=60
seed=$(( $(date +%s) % 100000 ))
image=/dev/shm/bfs-sqlite-crash.img
image_size=2G
while [ $# -gt 0 ]; do
  case $1 in
    --iterations) iterations=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --image) image=$2; shift 2 ;;
    --image-size) image_size=$2; shift 2 ;;
    *) echo "usage: $0 [--iterations N] [--seed S] [--image PATH] [--image-size SIZE]" >&2; exit 2 ;;
  esac
done

build=${SQLITE_BUILD:-build}
make -s -C sqlite "$build/crashwriter" >/dev/null
writer=sqlite/$build/crashwriter
out=$(mktemp)
trap 'rm -f "$out"' EXIT

echo "sqlite-crash: seed $seed, $iterations kills (rerun: $0 --seed $seed --iterations $iterations)"
RANDOM=$seed
export BFS_SQLITE_DEVICE=$image
rm -f "$image"
truncate -s "$image_size" "$image"

# check DB LAST: the checker, retried while the killed writer's device is still held (its
# io_uring is torn down after the process is gone).
check() {
  local rc
  for _ in $(seq 100); do
    rc=0
    "$writer" check "$1" "$2" >/dev/null 2>"$out.err" || rc=$?
    [ $rc -ne 3 ] && break
    sleep 0.05
  done
  if [ $rc -ne 0 ]; then
    cat "$out.err" >&2
    echo "FAILED at kill $i ($mode, seed $seed): check exited $rc" >&2
    exit 1
  fi
}

BFS_SQLITE_FORMAT=1 "$writer" check /crash-wal.db 0 >/dev/null
declare -A last=([wal]=0 [delete]=0)
for i in $(seq "$iterations"); do
  if (( i % 2 )); then mode=wal; else mode=delete; fi
  db=/crash-$mode.db
  writer_seed=$RANDOM
  delay_ms=$(( 10 + RANDOM % 600 ))
  "$writer" write "$db" "$mode" "$writer_seed" >"$out" 2>"$out.err" &
  pid=$!
  sleep "$(printf '0.%03d' "$delay_ms")"
  kill -KILL "$pid" 2>/dev/null || true
  status=0
  wait "$pid" 2>/dev/null || status=$?
  # The writer only ever stops by the kill (128 + 9); anything else is a failure of its own.
  if [ "$status" -ne 137 ]; then
    cat "$out.err" >&2
    echo "FAILED at kill $i ($mode, seed $seed): the writer exited $status before the kill" >&2
    exit 1
  fi
  # Only whole lines count: a number is reported once its newline is out.
  reported=$(awk 'END { print last + 0 } /^[0-9]+$/ { last = $1 }' "$out")
  [ -n "$(tail -c1 "$out")" ] && reported=$(head -n -1 "$out" | tail -n1)
  (( reported > last[$mode] )) && last[$mode]=$reported
  check "$db" "${last[$mode]}"
  printf 'kill %3d: %-6s after %3d ms, %5d transactions reported committed, check ok\n' \
    "$i" "$mode" "$delay_ms" "${last[$mode]}"
done
rm -f "$out.err"
# Kills that all landed before the first commit would have checked nothing.
if (( last[wal] == 0 || last[delete] == 0 )); then
  echo "FAILED: no transaction committed in some journal mode (wal ${last[wal]}, delete ${last[delete]})" >&2
  exit 1
fi
rm -f "$image" # kept after a failure, for a look at the crash state
echo "sqlite-crash: $iterations kills, every check ok (seed $seed; ${last[wal]} WAL and ${last[delete]} DELETE transactions committed)"

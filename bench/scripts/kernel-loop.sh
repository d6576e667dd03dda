# Shared by the scripts that compare bypassfs with kernel filesystems on a loop device over
# a file in /dev/shm (vs-kernel-fs.sh, vs-kernel-meta.sh): what is set up right now, and its
# teardown on any exit. Source it after setting SCRIPT (the name errors are shown under).

# What is set up right now, for cleanup.
CUR_MNT=""
CUR_LOOP=""
CUR_BACKING=""
RESULTS_TMP=""

log() { echo "== $*" >&2; }
die() { echo "$SCRIPT: $*" >&2; exit 1; }

teardown_current() {
    if [ -n "$CUR_MNT" ]; then
        mountpoint -q "$CUR_MNT" && umount "$CUR_MNT"
        rmdir "$CUR_MNT"
        CUR_MNT=""
    fi
    if [ -n "$CUR_LOOP" ]; then
        losetup -d "$CUR_LOOP"
        CUR_LOOP=""
    fi
    if [ -n "$CUR_BACKING" ]; then
        rm -f "$CUR_BACKING"
        CUR_BACKING=""
    fi
}

cleanup() {
    local rc=$?
    set +e
    teardown_current
    [ -n "$RESULTS_TMP" ] && rm -rf "$RESULTS_TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

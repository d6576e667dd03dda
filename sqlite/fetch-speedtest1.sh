#!/usr/bin/env bash
# Prints the path of SQLite's test/speedtest1.c from the Debian source package of the
# installed libsqlite3-dev (the same version on both sides of a comparison), fetching it
# into CACHE (default bench/out/sqlite-src) with `apt-get source` when it is not there.
# Adds a deb-src entry for the configured suites when apt has none (needs root then).
set -euo pipefail
cd "$(dirname "$0")/.."
cache=${CACHE:-$PWD/bench/out/sqlite-src}
version=$(dpkg-query -W -f '${Version}' libsqlite3-dev 2>/dev/null) || {
  echo "fetch-speedtest1: libsqlite3-dev is not installed (apt-get install libsqlite3-dev)" >&2
  exit 1
}
upstream=${version%%-*}
found=$(find "$cache" -path "*sqlite3-$upstream/test/speedtest1.c" 2>/dev/null | head -n1 || true)
if [ -z "$found" ]; then
  if ! apt-get source --print-uris sqlite3 >/dev/null 2>&1; then
    # deb822 sources: the same entries as the binary ones, as deb-src.
    src=/etc/apt/sources.list.d/debian.sources
    [ -f "$src" ] || { echo "fetch-speedtest1: no $src to derive a deb-src entry from" >&2; exit 1; }
    sed 's/^Types: deb$/Types: deb-src/' "$src" >/etc/apt/sources.list.d/bypassfs-deb-src.sources
    apt-get update -qq
  fi
  mkdir -p "$cache"
  (cd "$cache" && apt-get source -qq --download-only "sqlite3=$version" >/dev/null 2>&1 ||
     apt-get source -qq --download-only sqlite3 >/dev/null)
  tarball=$(ls "$cache"/sqlite3_"$upstream".orig.tar.* | head -n1)
  tar -C "$cache" -xf "$tarball" --wildcards '*/test/speedtest1.c'
  found=$(find "$cache" -path "*sqlite3-$upstream/test/speedtest1.c" | head -n1)
fi
[ -n "$found" ] || { echo "fetch-speedtest1: speedtest1.c of sqlite $upstream not found" >&2; exit 1; }
echo "$found"

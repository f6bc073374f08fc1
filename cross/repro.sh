#!/usr/bin/env bash
# Reproducibility check: build the committed tree (HEAD, or $REV) twice, in
# two different directories, the second time with an empty build cache, and
# require byte-identical binaries for every target.
#   cross/repro.sh [TARGET...]     (default: amd64 arm64 armv7 armv6)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
REV="${REV:-HEAD}"
[ $# -gt 0 ] || set -- amd64 arm64 armv7 armv6
rev="$(git -C "$root" rev-parse "$REV")"
VERSION="${VERSION:-$(git -C "$root" describe --tags --always "$rev" 2>/dev/null || echo "$rev")}"
work="$(mktemp -d /tmp/nexfield-repro.XXXXXX)"
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
a="$work/a/src"
b="$work/b/another/place/src"
mkdir -p "$a" "$b" "$work/gocache-b"
git -C "$root" archive "$rev" | tar -x -C "$a"
git -C "$root" archive "$rev" | tar -x -C "$b"
echo "repro: $rev ($VERSION), targets: $*"
t0=$(date +%s)
SRC="$a" DIST="$work/a/dist" VERSION="$VERSION" "$here/build.sh" "$@" >/dev/null
t1=$(date +%s)
SRC="$b" DIST="$work/b/dist" VERSION="$VERSION" GOCACHE="$work/gocache-b" "$here/build.sh" "$@" >/dev/null
t2=$(date +%s)
echo "build 1 (shared cache): $((t1 - t0)) s; build 2 (empty cache, other dir): $((t2 - t1)) s"
if cmp -s "$work/a/dist/SHA256SUMS" "$work/b/dist/SHA256SUMS"; then
	sed 's/^/  identical  /' "$work/a/dist/SHA256SUMS"
	echo "repro: OK, byte-identical"
else
	echo "repro: FAILED, the builds differ:" >&2
	diff "$work/a/dist/SHA256SUMS" "$work/b/dist/SHA256SUMS" >&2 || true
	exit 1
fi

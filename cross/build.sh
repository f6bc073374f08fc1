#!/usr/bin/env bash
# Build static release binaries: cross/build.sh TARGET... (amd64 arm64 armv7 armv6)
# into $DIST (default dist/) as nexfield_linux_<target>, then rewrite
# $DIST/SHA256SUMS over every nexfield_linux_* there.
#
# Environment: GO (go), VERSION (git describe), DIST (dist), SRC (the module
# root, default: this checkout), BUILD_TAGS (default field: the field
# binary every release, .deb and repro build ships; BUILD_TAGS= builds the
# development binary with the demo, benchmarks and trainer).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
SRC="${SRC:-$(dirname "$here")}"
GO="${GO:-go}"
DIST="${DIST:-$SRC/dist}"
VERSION="${VERSION:-$(git -C "$SRC" describe --tags --always --dirty 2>/dev/null || echo dev)}"
BUILD_TAGS="${BUILD_TAGS-field}"
[ $# -gt 0 ] || set -- amd64 arm64 armv7 armv6
mkdir -p "$DIST"
DIST="$(cd "$DIST" && pwd)"
for target in "$@"; do
	goarm=""
	case "$target" in
	amd64) goarch=amd64 ;;
	arm64) goarch=arm64 ;;
	armv7) goarch=arm goarm=7 ;;
	armv6) goarch=arm goarm=6 ;;
	*) echo "cross/build.sh: unknown target $target (amd64 arm64 armv7 armv6)" >&2; exit 2 ;;
	esac
	out="$DIST/nexfield_linux_$target"
	start=$(date +%s)
	# -buildid= and -trimpath remove the last per-machine bytes; -buildvcs=false
	# keeps a dirty tree and a clean export of the same commit identical.
	(cd "$SRC" && export CGO_ENABLED=0 GOOS=linux GOARCH=$goarch && { [ -z "$goarm" ] || export GOARM=$goarm; } && \
		"$GO" build -trimpath -buildvcs=false -tags "$BUILD_TAGS" \
		-ldflags "-s -w -buildid= -X main.version=$VERSION" \
		-o "$out.tmp" ./cmd/nexfield)
	mv "$out.tmp" "$out"
	printf '%-24s %10d bytes  %3ds\n' "nexfield_linux_$target" "$(stat -c %s "$out")" "$(( $(date +%s) - start ))"
done
(cd "$DIST" && ls nexfield_linux_* 2>/dev/null | grep -v '\.tmp$' | LC_ALL=C sort | xargs sha256sum > SHA256SUMS.tmp && mv SHA256SUMS.tmp SHA256SUMS)
echo "version $VERSION, tags \"$BUILD_TAGS\"; $DIST/SHA256SUMS:"
cat "$DIST/SHA256SUMS"

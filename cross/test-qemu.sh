#!/usr/bin/env bash
# Run the test suite for a Raspberry Pi architecture under qemu user-mode
# emulation: cross/test-qemu.sh arm64|armv7|armv6 [PACKAGE...]
#
# Default packages: every package whose tests do not start an embedded NATS
# server (those compile slowly for each architecture and add little that the
# native run does not cover). ALL=1 runs ./... . Installs qemu-user-static
# from Debian when it is missing; no binfmt_misc needed (go test -exec).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$(dirname "$here")"
GO="${GO:-go}"
target="${1:?usage: cross/test-qemu.sh arm64|armv7|armv6 [PACKAGE...]}"
shift
case "$target" in
arm64) export GOARCH=arm64; qemu=qemu-aarch64-static ;;
armv7) export GOARCH=arm GOARM=7; qemu=qemu-arm-static ;;
armv6) export GOARCH=arm GOARM=6; qemu=qemu-arm-static ;;
*) echo "cross/test-qemu.sh: unknown target $target" >&2; exit 2 ;;
esac
export CGO_ENABLED=0 GOOS=linux
if ! command -v "$qemu" >/dev/null; then
	echo "test-qemu: installing qemu-user-static"
	if [ ! -f /var/lib/apt/lists/.nexfield-updated ]; then
		apt-get update -qq && touch /var/lib/apt/lists/.nexfield-updated
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-user-static >/dev/null
fi
if [ $# -eq 0 ]; then
	if [ "${ALL:-}" = 1 ]; then
		set -- ./...
	else
		# Leave out packages whose tests import an embedded NATS server.
		mapfile -t pkgs < <("$GO" list -f '{{.ImportPath}} {{join .Imports " "}} {{join .TestImports " "}} {{join .XTestImports " "}}' ./... |
			awk '!/internal\/natstest|nats-server\/v2/ {print $1}')
		set -- "${pkgs[@]}"
	fi
fi
echo "test-qemu: $target ($qemu), $# package(s)"
start=$(date +%s)
# -short: tests that measure or soak shorten themselves; timing under TCG is
# 2-10x slower than native.
"$GO" test -short -count=1 -timeout 20m -exec "$qemu" "$@"
echo "test-qemu: $target passed in $(( $(date +%s) - start )) s"

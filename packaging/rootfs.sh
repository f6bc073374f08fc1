#!/usr/bin/env bash
# Print the path of a Debian bookworm root filesystem tarball (amd64,
# minbase + systemd + adduser), built once with debootstrap into .cache/.
# Used by test-deb.sh, test-system.sh and test-image.sh. Installs debootstrap
# when missing. MIRROR overrides the Debian mirror.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"
tarball="$root/.cache/rootfs-bookworm-amd64.tar"
if [ -s "$tarball" ]; then
	echo "$tarball"
	exit 0
fi
need debootstrap:debootstrap
mkdir -p "$root/.cache"
dir="$(mktemp -d /tmp/nexfield-rootfs.XXXXXX)"
trap 'rm -rf "$dir"' EXIT
start=$(date +%s)
debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,adduser,ca-certificates \
	bookworm "$dir" "$MIRROR" >&2
# mktemp made the directory 0700; "/" must be 0755 for the service users.
chmod 0755 "$dir"
# The container boots without a network; keep apt from trying.
rm -f "$dir/etc/hostname"
tar -C "$dir" -cf "$tarball.tmp" .
mv "$tarball.tmp" "$tarball"
echo "rootfs: debootstrap took $(( $(date +%s) - start )) s" >&2
echo "$tarball"

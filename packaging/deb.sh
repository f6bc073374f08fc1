#!/usr/bin/env bash
# Build the .deb packages (amd64, arm64, armhf) into dist/ with nfpm:
#   packaging/deb.sh [amd64] [arm64] [armhf]
# The armhf package carries the ARMv6 binary: Raspberry Pi OS armhf also runs
# on the Pi 1 and Zero. nfpm is built once into .cache/bin (pinned version,
# not a module dependency). SOURCE_DATE_EPOCH is the commit time, so the same
# commit gives byte-identical packages.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
cd "$root"
GO="${GO:-go}"
NFPM_VERSION_PIN=v2.45.2
VERSION="${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}"
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}"
[ $# -gt 0 ] || set -- amd64 arm64 armhf

# Debian versions start with a digit; untagged builds sort before any release.
v="${VERSION#v}"
if [[ "$v" =~ ^[0-9]+\.[0-9]+ ]]; then
	debver="$v"
else
	debver="0.0~git$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y%m%d).$v"
fi
debver="${debver//-/+}"

nfpm="${NFPM:-}"
if [ -z "$nfpm" ]; then
	nfpm="$root/.cache/bin/nfpm"
	if [ ! -x "$nfpm" ]; then
		echo "deb: building nfpm $NFPM_VERSION_PIN into .cache/bin"
		GOBIN="$root/.cache/bin" GOFLAGS= CGO_ENABLED=0 "$GO" install "github.com/goreleaser/nfpm/v2/cmd/nfpm@$NFPM_VERSION_PIN"
	fi
fi

mkdir -p dist
work="$(mktemp -d /tmp/nexfield-deb.XXXXXX)"
trap 'rm -rf "$work"' EXIT
cp systemd/nexfield-agent.service systemd/nexfield-peer.service systemd/nexfield-firstboot.service \
	systemd/nexfield.sysusers packaging/nexfield.yaml packaging/nfpm.yaml \
	packaging/debian/copyright packaging/debian/lintian-overrides \
	packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm "$work/"
sed -e "s/@VERSION@/$debver/" -e "s/@DATE@/$(LC_ALL=C date -u -R -d "@$SOURCE_DATE_EPOCH")/" \
	packaging/debian/changelog > "$work/changelog.Debian"
touch -d "@$SOURCE_DATE_EPOCH" "$work/changelog.Debian"
gzip -n -9 "$work/changelog.Debian"

for debarch in "$@"; do
	case "$debarch" in
	amd64) target=amd64 nfpmarch=amd64 ;;
	arm64) target=arm64 nfpmarch=arm64 ;;
	armhf) target=armv6 nfpmarch=arm6 ;;
	*) echo "deb: unknown architecture $debarch (amd64 arm64 armhf)" >&2; exit 2 ;;
	esac
	VERSION="$VERSION" GO="$GO" cross/build.sh "$target" >/dev/null
	install -m 0755 "dist/nexfield_linux_$target" "$work/nexfield"
	out="dist/nexfield_${debver}_${debarch}.deb"
	rm -f dist/nexfield_*_"$debarch".deb
	(cd "$work" && NFPM_ARCH="$nfpmarch" NFPM_VERSION="$debver" "$nfpm" package -f nfpm.yaml -p deb -t "$root/$out" >/dev/null)
	printf '%-40s %9d bytes\n' "$out" "$(stat -c %s "$out")"
done

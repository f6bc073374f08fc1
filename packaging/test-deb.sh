#!/usr/bin/env bash
# Check the .deb packages in dist/ (make deb first): lintian (no errors),
# control data, then install the amd64 package into a scratch Debian root
# and check files, user, groups, permissions, that no unit is enabled,
# conffile handling, removal and purge.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need lintian:lintian
start=$(date +%s)
for arch in amd64 arm64 armhf; do
	deb="$(deb_for $arch)"
	[ -n "$deb" ] || { echo "no dist/nexfield_*_$arch.deb: run make deb" >&2; exit 1; }
	echo "$(basename "$deb"):"
	check "lintian: no errors" lintian --fail-on error "$deb"
	check "Architecture: $arch" sh -c "dpkg-deb -f '$deb' Architecture | grep -qx $arch"
	check "conffiles is /etc/nexfield/nexfield.yaml" sh -c "dpkg-deb --ctrl-tarfile '$deb' | tar -xO ./conffiles | grep -qx /etc/nexfield/nexfield.yaml"
	check "ships no /var/lib/nexfield (StateDirectory= makes it)" sh -c "! dpkg-deb -c '$deb' | grep -q var/lib"
done

deb="$(deb_for amd64)"
r="$(mktemp -d /tmp/nexfield-deb-root.XXXXXX)"
trap 'rm -rf "$r"' EXIT
tar -C "$r" -xf "$("$root/packaging/rootfs.sh")"
chmod 0755 "$r"
cp "$deb" "$r/tmp/nexfield.deb"
inroot() { chroot "$r" "$@"; }
echo "install into a scratch bookworm root:"
check "dpkg -i" inroot dpkg -i /tmp/nexfield.deb
check "/usr/bin/nexfield runs" inroot /usr/bin/nexfield version
check "binary 0755 root:root" sh -c "[ \"\$(stat -c '%a %U %G' '$r/usr/bin/nexfield')\" = '755 root root' ]"
check "config 0644 root:root" sh -c "[ \"\$(stat -c '%a %U %G' '$r/etc/nexfield/nexfield.yaml')\" = '644 root root' ]"
check "example config passes config check" inroot /usr/bin/nexfield config check /etc/nexfield/nexfield.yaml
check "system user nexfield, nologin, home /var/lib/nexfield" sh -c "chroot '$r' getent passwd nexfield | grep -q ':/var/lib/nexfield:/usr/sbin/nologin\$'"
check "uid is a system uid" sh -c "[ \$(chroot '$r' id -u nexfield) -lt 1000 ]"
for g in gpio spi dialout; do
	check "nexfield in group $g" sh -c "chroot '$r' id -nG nexfield | tr ' ' '\n' | grep -qx $g"
done
check "no home or state dir created" test ! -e "$r/var/lib/nexfield"
check "no unit enabled" sh -c "[ -z \"\$(find '$r/etc/systemd/system' -name 'nexfield*')\" ]"
check "units verify in the installed root" inroot systemd-analyze verify --man=no \
	/usr/lib/systemd/system/nexfield-agent.service /usr/lib/systemd/system/nexfield-peer.service \
	/usr/lib/systemd/system/nexfield-firstboot.service
check "verify prints nothing" sh -c "[ -z \"\$(chroot '$r' systemd-analyze verify --man=no /usr/lib/systemd/system/nexfield-peer.service 2>&1)\" ]"
check "operator enables the peer" inroot systemctl enable nexfield-peer.service
check "enable link exists" test -L "$r/etc/systemd/system/multi-user.target.wants/nexfield-peer.service"
echo "# site change" >> "$r/etc/nexfield/nexfield.yaml"
check "reinstall (upgrade path)" inroot dpkg -i --force-confold /tmp/nexfield.deb
check "edited conffile kept" grep -q "# site change" "$r/etc/nexfield/nexfield.yaml"
check "enablement kept across upgrade" test -L "$r/etc/systemd/system/multi-user.target.wants/nexfield-peer.service"
mkdir -p "$r/var/lib/nexfield" && echo state > "$r/var/lib/nexfield/counter"
check "dpkg -r" inroot dpkg -r nexfield
check "binary removed" test ! -e "$r/usr/bin/nexfield"
check "config kept after remove" test -e "$r/etc/nexfield/nexfield.yaml"
check "dpkg -P" inroot dpkg -P nexfield
check "config and imported keys gone after purge" test ! -e "$r/etc/nexfield"
check "state gone after purge" test ! -e "$r/var/lib/nexfield"
check "user gone after purge" sh -c "! chroot '$r' getent passwd nexfield"
check "enable link gone after purge" test ! -e "$r/etc/systemd/system/multi-user.target.wants/nexfield-peer.service"
check "groups gpio/spi stay" sh -c "chroot '$r' getent group gpio && chroot '$r' getent group spi"
echo "test-deb: $fails failure(s) in $(( $(date +%s) - start )) s"
[ "$fails" -eq 0 ]

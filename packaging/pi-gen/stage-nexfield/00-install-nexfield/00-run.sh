#!/bin/bash -e
# Install the nexfield package built by "make deb" (copied into files/ by
# packaging/pi-gen/add-stage.sh). pi-gen's armhf build takes the armhf
# package (ARMv6 binary: every Pi), the arm64 branch the arm64 one.
arch="${ARCH:-armhf}"
shopt -s nullglob
debs=(files/nexfield_*_"${arch}".deb)
if [ "${#debs[@]}" -ne 1 ]; then
	echo "stage-nexfield: want exactly one files/nexfield_*_${arch}.deb, found ${#debs[@]}" >&2
	echo "stage-nexfield: run 'make deb' and packaging/pi-gen/add-stage.sh PI_GEN_DIR" >&2
	exit 1
fi
install -m 644 "${debs[0]}" "${ROOTFS_DIR}/tmp/nexfield.deb"
on_chroot << CHROOT
apt-get install -y --no-install-recommends /tmp/nexfield.deb
rm -f /tmp/nexfield.deb
CHROOT

#!/bin/bash -e
# Install the nexfield package, enable the chosen unit, and set up the radio's
# UART and SPI on the boot partition. files/nexfield.deb is the package for
# the image's architecture (armhf on pi-gen master, arm64 on its arm64
# branch); files/unit names the unit to enable: peer (default) or agent.
unit="$(cat files/unit 2>/dev/null || echo peer)"
case "$unit" in
peer | agent) ;;
*) echo "stage-nexfield: files/unit must be peer or agent, not $unit" >&2; exit 1 ;;
esac
install -m 644 files/nexfield.deb "${ROOTFS_DIR}/tmp/nexfield.deb"
on_chroot <<CHROOT
dpkg -i /tmp/nexfield.deb
rm -f /tmp/nexfield.deb
systemctl enable nexfield-${unit}.service
# The radio owns the UART: no login console on it.
systemctl mask serial-getty@ttyAMA0.service serial-getty@ttyS0.service serial-getty@serial0.service
# disable-bt below frees the PL011 UART from Bluetooth.
systemctl disable hciuart.service 2>/dev/null || true
CHROOT
boot="${ROOTFS_DIR}/boot/firmware"
[ -d "$boot" ] || boot="${ROOTFS_DIR}/boot"
files/boot-config.sh "$boot"

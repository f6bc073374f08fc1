#!/bin/bash -e
# The radio's interfaces: the PL011 UART on GPIO14/15 as /dev/serial0 for a
# RYLR998 (Bluetooth moved off it: disable-bt, and hciuart off; uart0=on puts
# UART0 on those pins on a Pi 5, whose enable_uart means the debug port), SPI for an
# SX127x board, and no serial console on the radio's UART (a login prompt
# there would talk AT commands to the module).
boot="${ROOTFS_DIR}/boot/firmware"
[ -d "$boot" ] || boot="${ROOTFS_DIR}/boot"
config="$boot/config.txt"
cmdline="$boot/cmdline.txt"
touch "$config"

# Rewrite our own block only, so re-running the stage is harmless.
sed -i '/^# nexfield radio: begin/,/^# nexfield radio: end/d' "$config"
cat >> "$config" << 'BLOCK'
# nexfield radio: begin
[all]
enable_uart=1
dtoverlay=disable-bt
dtparam=uart0=on
dtparam=spi=on
# nexfield radio: end
BLOCK

if [ -f "$cmdline" ]; then
	# One line, words separated by spaces: drop the serial console words only.
	line="$(tr -s ' \n' '\n\n' < "$cmdline" | grep -vE '^console=(serial0|ttyAMA0|ttyS0)(,[0-9]+)?$' | paste -sd' ')"
	printf '%s\n' "$line" > "$cmdline"
fi

on_chroot << CHROOT
systemctl mask serial-getty@ttyAMA0.service serial-getty@ttyS0.service serial-getty@serial0.service
if systemctl cat hciuart.service >/dev/null 2>&1; then systemctl disable hciuart.service; fi
CHROOT

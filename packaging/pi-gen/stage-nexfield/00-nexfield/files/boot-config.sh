#!/bin/sh
# boot-config.sh BOOTDIR: set up config.txt and cmdline.txt of a Raspberry Pi
# boot partition for a LoRa radio: the PL011 UART on GPIO14/15 for a UART
# module (RYLR998), SPI for an SX127x, and no serial console. Idempotent.
set -e
boot="${1:?usage: boot-config.sh BOOTDIR}"
cfg="$boot/config.txt"
touch "$cfg"
if ! grep -q '^# nexfield radio' "$cfg"; then
	cat >> "$cfg" <<'CFG'

# nexfield radio
[all]
# UART for a RYLR998-style module on GPIO14 (TXD) / GPIO15 (RXD).
enable_uart=1
# Pi 3/4/Zero W: give the PL011 (ttyAMA0, /dev/serial0) to the header, not Bluetooth.
dtoverlay=disable-bt
# Pi 5: UART0 on the header pins.
dtparam=uart0=on
# SPI0 for an SX127x (RFM95W) radio: /dev/spidev0.0 and 0.1.
dtparam=spi=on
CFG
fi
if [ -f "$boot/cmdline.txt" ]; then
	# One line; drop the serial console so the kernel leaves the UART alone.
	sed -i -e 's/console=serial0,[0-9]* *//' -e 's/console=ttyAMA0,[0-9]* *//' -e 's/console=ttyS0,[0-9]* *//' "$boot/cmdline.txt"
fi

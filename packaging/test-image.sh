#!/usr/bin/env bash
# Assemble a small SD-card image without mounting anything, the way the
# pi-gen stage lays it out, then run the first boot against its boot
# partition:
#   root partition: the Debian root + the amd64 .deb + the stage's unit
#     enablement, written with mkfs.ext4 -d;
#   boot partition: FAT32 made with mkfs.vfat -C, config.txt/cmdline.txt
#     edited by the stage's boot-config.sh, plus the technician's
#     nexfield.yaml and link.key, copied in with mcopy;
#   MBR with sfdisk, partitions placed with dd.
# First boot: the boot partition's files are read back with mtools,
# "nexfield firstboot" runs in the root (systemd-nspawn, not booted) with them
# at /boot/firmware, and the result is written back into the image.
# (amd64 stands in for the Pi's arm64/armhf: same package contents.)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need mcopy:mtools mkfs.vfat:dosfstools sfdisk:fdisk debugfs:e2fsprogs systemd-nspawn:systemd-container
start=$(date +%s)
deb="$(deb_for amd64)"
[ -n "$deb" ] || { echo "no dist/nexfield_*_amd64.deb: run make deb" >&2; exit 1; }
work="$(mktemp -d /tmp/nexfield-image.XXXXXX)"
trap '[ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
r="$work/root"
mkdir -p "$r" "$work/bootfiles"
tar -C "$r" -xf "$("$root/packaging/rootfs.sh")"
chmod 0755 "$r"
stage="$root/packaging/pi-gen/stage-nexfield/00-nexfield"

# What the stage's 00-run.sh does in the chroot.
cp "$deb" "$r/tmp/nexfield.deb"
chroot "$r" dpkg -i /tmp/nexfield.deb >/dev/null
rm "$r/tmp/nexfield.deb"
chroot "$r" systemctl enable "nexfield-$(cat "$stage/files/unit").service" >/dev/null 2>&1
chroot "$r" systemctl mask serial-getty@ttyAMA0.service serial-getty@serial0.service >/dev/null 2>&1

# Boot partition contents: stock-looking files, the stage's edits, and what a
# technician adds from a laptop.
b="$work/bootfiles"
printf 'console=serial0,115200 console=tty1 root=PARTUUID=6c586e13-02 rootfstype=ext4 fsck.repair=yes rootwait\n' > "$b/cmdline.txt"
printf '# stock\ndtparam=audio=on\n[pi4]\narm_boost=1\n' > "$b/config.txt"
"$stage/files/boot-config.sh" "$b"
printf 'peer:\n  driver: rylr\n  port: /dev/serial0\n  region: us915\n  psk-file: link.key\n' > "$b/nexfield.yaml"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$b/link.key"
cp "$b/link.key" "$work/link.key.orig"

t=$(date +%s)
img="$work/sd.img"
boot_mib=64
boot_off=$((4 * 1024 * 1024))
rm -f "$work/boot.fat"
mkfs.vfat -C -F 32 -n bootfs "$work/boot.fat" $((boot_mib * 1024)) >/dev/null 2>&1
mcopy -i "$work/boot.fat" "$b"/* ::/
root_mib=$(( $(du -sm "$r" | cut -f1) * 13 / 10 + 64 ))
mkfs.ext4 -q -L rootfs -d "$r" "$work/root.ext4" "${root_mib}M" >/dev/null
total=$(( 4 + boot_mib + root_mib + 1 ))
truncate -s "${total}M" "$img"
sfdisk -q "$img" <<EOF_PART
label: dos
start=8192, size=$((boot_mib * 2048)), type=c, bootable
start=$((8192 + boot_mib * 2048)), type=83
EOF_PART
dd if="$work/boot.fat" of="$img" bs=1M seek=4 conv=notrunc status=none
dd if="$work/root.ext4" of="$img" bs=1M seek=$((4 + boot_mib)) conv=notrunc status=none
assemble=$(( $(date +%s) - t ))
echo "image: $(( $(stat -c %s "$img") / 1024 / 1024 )) MiB assembled in ${assemble} s"
rootpart() { # extract the root partition for debugfs
	dd if="$img" of="$work/p2.ext4" bs=1M skip=$((4 + boot_mib)) status=none
}
fat="$img@@$boot_off"
check "partition table: FAT32 LBA + Linux" sh -c "sfdisk -d '$img' | grep -q 'type=c, bootable' && sfdisk -d '$img' | grep -q 'type=83'"
check "boot partition lists nexfield.yaml" sh -c "mdir -b -i '$fat' ::/ | grep -qi nexfield.yaml"
check "config.txt has the radio overlays" sh -c "mtype -i '$fat' ::/config.txt | grep -q '^dtoverlay=disable-bt' && mtype -i '$fat' ::/config.txt | grep -q '^dtparam=spi=on'"
check "cmdline.txt has no serial console" sh -c "! mtype -i '$fat' ::/cmdline.txt | grep -q 'console=serial0'"
rootpart
check "root partition: /usr/bin/nexfield" sh -c "debugfs -R 'stat /usr/bin/nexfield' '$work/p2.ext4' 2>/dev/null | grep -q 'Mode:  0755'"
check "root partition: peer unit enabled" sh -c "debugfs -R 'stat /etc/systemd/system/multi-user.target.wants/nexfield-peer.service' '$work/p2.ext4' 2>/dev/null | grep -q 'Type: symlink'"

# First boot against the image's boot partition.
fb="$work/firstboot"
mkdir -p "$fb"
mcopy -s -i "$fat" ::/ "$fb/"
t=$(date +%s)
timeout 60 systemd-nspawn -q --register=no --keep-unit -M nexfield-image -D "$r" \
	--bind="$fb:/boot/firmware" /usr/bin/nexfield firstboot > "$work/firstboot.log" 2>&1 || true
sed 's/^/  | /' "$work/firstboot.log"
# Write the result back into the FAT partition: deleted files, new files.
for f in $(mdir -b -i "$fat" ::/ | sed 's|^::/||'); do
	[ -e "$fb/$f" ] || mdel -i "$fat" "::/$f"
done
for f in "$fb"/*; do mcopy -o -i "$fat" "$f" ::/; done
# And the root partition, rebuilt from the updated tree.
rm -f "$work/root.ext4"
mkfs.ext4 -q -L rootfs -d "$r" "$work/root.ext4" "${root_mib}M" >/dev/null
dd if="$work/root.ext4" of="$img" bs=1M seek=$((4 + boot_mib)) conv=notrunc status=none
echo "first boot and write-back: $(( $(date +%s) - t )) s"
check "firstboot imported" grep -q "firstboot: imported" "$work/firstboot.log"
check "nexfield.yaml gone from the FAT" sh -c "! mdir -b -i '$fat' ::/ | grep -qi 'nexfield.yaml'"
check "link.key gone from the FAT" sh -c "! mdir -b -i '$fat' ::/ | grep -qi 'link.key'"
check "nexfield-imported.txt left for the technician" sh -c "mdir -b -i '$fat' ::/ | grep -qi 'nexfield-imported.txt'"
rootpart
check "root: link.key 0600 owned by nexfield" sh -c "debugfs -R 'stat /etc/nexfield/link.key' '$work/p2.ext4' 2>/dev/null | grep -q 'Mode:  0600' && [ \"\$(debugfs -R 'stat /etc/nexfield/link.key' '$work/p2.ext4' 2>/dev/null | sed -n 's/.*User: *\([0-9]*\).*/\1/p')\" = \"\$(chroot '$r' id -u nexfield)\" ]"
check "root: key content intact" sh -c "debugfs -R 'cat /etc/nexfield/link.key' '$work/p2.ext4' 2>/dev/null | cmp -s - '$work/link.key.orig'"
check "root: config points at /etc/nexfield/link.key" sh -c "debugfs -R 'cat /etc/nexfield/nexfield.yaml' '$work/p2.ext4' 2>/dev/null | grep -q 'psk-file: /etc/nexfield/link.key'"
echo "test-image: $fails failure(s) in $(( $(date +%s) - start )) s"
[ "$fails" -eq 0 ]

#!/usr/bin/env bash
# Build a small SD-card image the way a Raspberry Pi OS image is laid out,
# without mounting anything, and run the first boot against its boot
# partition:
#   1. apply packaging/pi-gen/stage-nexfield to a debootstrapped root (pi-gen's
#      on_chroot is a plain chroot here; amd64 root and package stand in for
#      armhf/arm64, the stage scripts do not depend on the architecture);
#   2. assemble disk.img: MBR (sfdisk), FAT32 boot partition at 4 MiB (mkfs.vfat
#      -C + mcopy) holding config.txt, cmdline.txt and what a technician
#      copies on (nexfield.yaml, link.key), ext4 root (mkfs.ext4 -d), dd;
#   3. first boot: the kernel here has no FAT driver, so the boot partition's
#      files are copied out of the image with mtools, "nexfield firstboot" runs
#      in the root (chroot), and the partition is brought in line with the
#      result (deleted files mdel'ed, new files mcopy'ed), then checked with
#      mdir/mtype and the root with debugfs;
#   4. the same with a misconfigured radio: nothing imported, the error report
#      lands on the boot partition, the secrets stay off /etc.
# Needs root (chroot). Installs mtools, dosfstools, fdisk, e2fsprogs and
# debootstrap when missing. KEEP=1 keeps the work directory.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need mcopy:mtools mkfs.vfat:dosfstools sfdisk:fdisk mkfs.ext4:e2fsprogs debugfs:e2fsprogs
start=$(date +%s)
deb="$(deb_for amd64)"
[ -n "$deb" ] || { echo "test-image: no dist/nexfield_*_amd64.deb: run make deb" >&2; exit 1; }
w="$(mktemp -d /tmp/nexfield-image.XXXXXX)"
if [ "${KEEP:-}" = 1 ]; then
	echo "test-image: work directory $w"
else
	trap 'rm -rf "$w"' EXIT
fi
r="$w/rootfs"
mkdir -p "$r"
tar -C "$r" -xf "$("$root/packaging/rootfs.sh")"

# What pi-gen's stage2 leaves in the boot partition (Bookworm layout).
mkdir -p "$r/boot/firmware"
cat > "$r/boot/firmware/config.txt" <<'CFG'
# For more options and information see
# http://rptl.io/configtxt
dtparam=audio=on
camera_auto_detect=1
display_auto_detect=1
auto_initramfs=1
dtoverlay=vc4-kms-v3d
max_framebuffers=2
arm_boost=1

[cm4]
otg_mode=1

[all]
CFG
echo "console=serial0,115200 console=tty1 root=PARTUUID=4e78c5a1-02 rootfstype=ext4 fsck.repair=yes rootwait" > "$r/boot/firmware/cmdline.txt"

echo "pi-gen stage-nexfield (NEXFIELD_UNIT=peer) on a scratch root:"
stage="$w/stage-nexfield"
cp -a "$root/packaging/pi-gen/stage-nexfield" "$stage"
cp "$deb" "$stage/00-install-nexfield/files/"
runstage() { # the part of pi-gen's run_stage that matters: NN-run.sh in each sub-stage dir
	local sub
	for sub in "$stage"/[0-9][0-9]-*/; do
		(cd "$sub" && ROOTFS_DIR="$r" ARCH=amd64 NEXFIELD_UNIT="${1:-peer}" ./00-run.sh) >"$w/stage.log" 2>&1 || { cat "$w/stage.log" >&2; return 1; }
	done
}
on_chroot() { chroot "$ROOTFS_DIR" /bin/bash -e; }
export -f on_chroot
check "stage runs" runstage peer
check "stage runs again (idempotent)" runstage peer
check "package installed" sh -c "chroot '$r' dpkg-query -W -f='\${Status}' nexfield | grep -qx 'install ok installed'"
check "peer enabled" test -L "$r/etc/systemd/system/multi-user.target.wants/nexfield-peer.service"
check "agent not enabled" test ! -e "$r/etc/systemd/system/multi-user.target.wants/nexfield-agent.service"
cfg="$r/boot/firmware/config.txt"
check "config.txt: enable_uart=1, disable-bt, spi on" sh -c "grep -qx enable_uart=1 '$cfg' && grep -qx dtoverlay=disable-bt '$cfg' && grep -qx dtparam=spi=on '$cfg'"
check "config.txt: our block once" sh -c "[ \$(grep -c '^# nexfield radio: begin' '$cfg') = 1 ]"
check "config.txt: block under [all]" sh -c "sed -n '/^# nexfield radio: begin/,\$p' '$cfg' | sed -n 2p | grep -qx '\[all\]'"
check "config.txt: the rest untouched" grep -qx 'dtoverlay=vc4-kms-v3d' "$cfg"
check "cmdline.txt: no serial console, rest kept" sh -c "grep -q 'console=tty1 root=PARTUUID=4e78c5a1-02' '$r/boot/firmware/cmdline.txt' && ! grep -q 'console=serial0' '$r/boot/firmware/cmdline.txt'"
check "serial getty masked on ttyAMA0" sh -c "[ \"\$(readlink '$r/etc/systemd/system/serial-getty@ttyAMA0.service')\" = /dev/null ]"
check "NEXFIELD_UNIT unset: the stage fails and says why" sh -c "cd '$stage/02-enable-unit' && ! env -u NEXFIELD_UNIT ROOTFS_DIR='$r' ./00-run.sh 2>'$w/unset.err' && grep -q 'set NEXFIELD_UNIT' '$w/unset.err'"

# The technician's files for the peer.
key="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
mkdir -p "$w/tech"
cat > "$w/tech/nexfield.yaml" <<YAML
# field station 7
peer:
  driver: rylr
  port: /dev/serial0
  region: us915
  sf: 9
  address: 2
  psk-file: link.key
YAML
echo "$key" > "$w/tech/link.key"

mib=$((1024 * 1024))
boot_off=$((4 * mib))
boot_size=$((64 * mib))
# assemble IMG BOOTDIR: FAT boot partition from BOOTDIR, root from $r minus /boot/firmware.
assemble() {
	local img="$1" bootdir="$2"
	rm -f "$w/boot.fat" "$w/root.ext4"
	mkfs.vfat -C -F 32 -n bootfs "$w/boot.fat" $((boot_size / 1024)) >/dev/null 2>&1
	mcopy -s -i "$w/boot.fat" "$bootdir"/* ::/
	mv "$r/boot/firmware" "$w/firmware.hold" && mkdir "$r/boot/firmware"
	local root_mb=$(( $(du -sm "$r" | cut -f1) * 13 / 10 + 64 ))
	mkfs.ext4 -q -F -L rootfs -d "$r" "$w/root.ext4" "${root_mb}M" >/dev/null
	rmdir "$r/boot/firmware" && mv "$w/firmware.hold" "$r/boot/firmware"
	local root_off=$((boot_off + boot_size)) root_size
	root_size=$(stat -c %s "$w/root.ext4")
	truncate -s $((root_off + root_size)) "$img"
	sfdisk -q "$img" <<SF
label: dos
start=$((boot_off / 512)), size=$((boot_size / 512)), type=c
start=$((root_off / 512)), size=$((root_size / 512)), type=83
SF
	dd if="$w/boot.fat" of="$img" bs=1M seek=$((boot_off / mib)) conv=notrunc status=none
	dd if="$w/root.ext4" of="$img" bs=1M seek=$((root_off / mib)) conv=notrunc status=none
}
# firstboot IMG: run "nexfield firstboot" against IMG's boot partition; sets rc.
firstboot() {
	local img="$1" fat="$1@@$boot_off" f
	rm -rf "$r/boot/firmware" && mkdir -p "$r/boot/firmware"
	mcopy -s -n -i "$fat" '::/*' "$r/boot/firmware/"
	rc=0
	chroot "$r" /usr/bin/nexfield firstboot >"$w/firstboot.out" 2>&1 || rc=$?
	# Bring the FAT partition in line with what firstboot left.
	for f in $(mdir -b -i "$fat" ::/ | sed 's|^::/||'); do
		[ -e "$r/boot/firmware/$f" ] || mdel -i "$fat" "::/$f"
	done
	for f in nexfield-error.txt nexfield-imported.txt; do
		[ ! -e "$r/boot/firmware/$f" ] || mcopy -o -i "$fat" "$r/boot/firmware/$f" "::/$f"
	done
}
on_fat() { mdir -b -i "$1@@$boot_off" ::/ | sed 's|^::/||' | grep -qx "$2"; }

echo "image with a good configuration:"
mkdir -p "$w/bootdir"
cp -a "$r/boot/firmware/." "$w/bootdir/"
cp "$w/tech/nexfield.yaml" "$w/tech/link.key" "$w/bootdir/"
t0=$(date +%s%N)
assemble "$w/disk.img" "$w/bootdir"
echo "  image: $(( $(stat -c %s "$w/disk.img") / mib )) MiB assembled in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
check "MBR: FAT32 boot at 4 MiB, Linux root after it" sh -c "sfdisk -d '$w/disk.img' | grep -q 'start= *8192, size= *131072, type=c' && sfdisk -d '$w/disk.img' | grep -q 'type=83'"
check "boot partition holds config.txt and the technician's files" sh -c "mtype -i '$w/disk.img@@$boot_off' ::/config.txt | grep -qx enable_uart=1 && mtype -i '$w/disk.img@@$boot_off' ::/link.key | grep -qx '$key'"
root_off=$((boot_off + boot_size))
check "root partition has /usr/bin/nexfield (debugfs)" sh -c "debugfs -R 'stat /usr/bin/nexfield' '$w/disk.img?offset=$root_off' 2>/dev/null | grep -q 'Mode:  0755'"
check "root partition has the peer enabled" sh -c "debugfs -R 'stat /etc/systemd/system/multi-user.target.wants/nexfield-peer.service' '$w/disk.img?offset=$root_off' 2>/dev/null | grep -q 'Type: symlink'"
firstboot "$w/disk.img"
check "firstboot succeeds" test "$rc" = 0
check "link.key gone from the boot partition" sh -c "! mdir -b -i '$w/disk.img@@$boot_off' ::/ | grep -qi link.key"
check "nexfield.yaml gone from the boot partition" sh -c "! mdir -b -i '$w/disk.img@@$boot_off' ::/ | grep -qix '::/nexfield.yaml'"
check "config.txt still on the boot partition" on_fat "$w/disk.img" config.txt
uid="$(chroot "$r" id -u nexfield)"
check "/etc/nexfield/link.key 0600 nexfield, same key" sh -c "[ \"\$(stat -c '%a %u' '$r/etc/nexfield/link.key')\" = '600 $uid' ] && grep -qx '$key' '$r/etc/nexfield/link.key'"
check "/etc/nexfield/nexfield.yaml points at the imported key" grep -q 'psk-file: /etc/nexfield/link.key' "$r/etc/nexfield/nexfield.yaml"
check "imported config passes config check" chroot "$r" /usr/bin/nexfield config check /etc/nexfield/nexfield.yaml
firstboot "$w/disk.img"
check "second boot: nothing to import, success" sh -c "[ $rc = 0 ] && grep -q 'nothing to import' '$w/firstboot.out'"

echo "image with a misconfigured radio (sf: 13):"
rm -rf "$r/etc/nexfield/link.key" "$w/bootdir" "$w/disk2.img"
cp "$r/etc/nexfield/nexfield.yaml" "$w/before.yaml"
mkdir -p "$w/bootdir"
cp -a "$r/boot/firmware/." "$w/bootdir/"
rm -f "$w/bootdir/nexfield-imported.txt"
sed 's/sf: 9/sf: 13/' "$w/tech/nexfield.yaml" > "$w/bootdir/nexfield.yaml"
cp "$w/tech/link.key" "$w/bootdir/"
assemble "$w/disk2.img" "$w/bootdir"
firstboot "$w/disk2.img"
check "firstboot fails" test "$rc" != 0
check "the journal line names the problem" grep -q 'problem=.*peer' "$w/firstboot.out"
check "nexfield-error.txt on the boot partition explains it" sh -c "mtype -i '$w/disk2.img@@$boot_off' ::/nexfield-error.txt | grep -q 'nothing was imported'"
check "nothing imported: /etc/nexfield unchanged, no key" sh -c "cmp -s '$w/before.yaml' '$r/etc/nexfield/nexfield.yaml' && [ ! -e '$r/etc/nexfield/link.key' ]"
echo "test-image: $fails failure(s) in $(( $(date +%s) - start )) s"
[ "$fails" -eq 0 ]

#!/usr/bin/env bash
# The units under a real systemd: boot a debootstrapped Debian root with
# systemd-nspawn (no Docker, no KVM), the amd64 .deb installed, a boot
# partition bound to /boot/firmware holding nexfield.yaml and a link key.
#
# Boot 1: firstboot imports the files; nexfield-peer.service (ExecStart
# replaced by "nexfield firstboot notify-selftest", a stand-in daemon: no radio
# here) reaches active through Type=notify with its status text, as user
# nexfield with its groups and state dir; when its loop is stalled on purpose
# the watchdog pings stop and systemd restarts it; stop is clean.
# Boot 2: a bad nexfield.yaml is rejected and the peer does not start.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need systemd-nspawn:systemd-container
start=$(date +%s)
installed_root system
boot="$work/boot"
mkdir -p "$boot"
# The stand-in daemon in place of the radio peer, with a short watchdog.
mkdir -p "$r/etc/systemd/system/nexfield-peer.service.d"
cat > "$r/etc/systemd/system/nexfield-peer.service.d/selftest.conf" <<'UNIT'
[Service]
ExecStart=
ExecStart=/usr/bin/nexfield firstboot notify-selftest
WatchdogSec=3s
RestartSec=1s
UNIT
chroot "$r" systemctl enable nexfield-peer.service >/dev/null 2>&1
cat > "$r/usr/local/bin/nexfield-probe" <<'PROBE'
#!/bin/bash
exec > /root/results 2>&1
show() { systemctl show -p "$2" --value "$1"; }
wait_for() { # wait_for SECONDS COMMAND...
	local end=$(( $(date +%s) + $1 )); shift
	until "$@"; do [ "$(date +%s)" -lt "$end" ] || return 1; sleep 0.2; done
}
peer=nexfield-peer.service
if [ "$1" = bad ]; then
	wait_for 20 systemctl -q is-failed nexfield-firstboot.service || true
	wait_for 10 sh -c "! systemctl list-jobs --no-legend | grep -q nexfield-peer" || true
	echo "firstboot=$(show nexfield-firstboot.service Result)"
	echo "peer=$(show $peer ActiveState)"
	echo "bootfiles=$(ls /boot/firmware | tr '\n' ' ')"
	journalctl -u nexfield-firstboot.service --no-pager -o cat | grep -m1 "configuration rejected" | sed 's/^/journal: /'
	systemctl poweroff --no-block; exit 0
fi
wait_for 30 sh -c "[ \$(systemctl show -p ActiveState --value $peer) = active ]"
echo "active=$(show $peer ActiveState)/$(show $peer SubState)"
echo "type=$(show $peer Type) watchdog=$(show $peer WatchdogUSec)"
echo "status=$(show $peer StatusText)"
pid=$(show $peer MainPID)
echo "user=$(stat -c %U /proc/$pid)"
echo "groups=$(id -nG nexfield)"
echo "statedir=$(stat -c '%a %U' /var/lib/nexfield)"
echo "firstboot=$(show nexfield-firstboot.service Result)"
echo "key=$(stat -c '%a %U' /etc/nexfield/link.key)"
echo "config=$(grep psk-file /etc/nexfield/nexfield.yaml | tr -d ' ')"
echo "bootfiles=$(ls /boot/firmware | tr '\n' ' ')"
touch /var/lib/nexfield/stall
wait_for 20 sh -c "[ \$(systemctl show -p NRestarts --value $peer) -ge 1 ]"
rm -f /var/lib/nexfield/stall
echo "restarts=$(show $peer NRestarts)"
journalctl -u $peer --no-pager -o cat | grep -m1 -i "watchdog timeout" | sed 's/^/journal: /'
journalctl -u $peer --no-pager -o cat | grep -m1 "unhealthy\|health check failed" | cut -c1-120 | sed 's/^/journal: /'
wait_for 20 sh -c "[ \$(systemctl show -p ActiveState --value $peer) = active ]"
echo "after=$(show $peer ActiveState) pid_changed=$([ "$(show $peer MainPID)" != "$pid" ] && echo yes || echo no)"
systemctl stop $peer
echo "stopped=$(show $peer ActiveState) result=$(show $peer Result)"
systemctl poweroff --no-block
PROBE
chmod 0755 "$r/usr/local/bin/nexfield-probe"
cat > "$r/etc/systemd/system/nexfield-probe.service" <<'UNIT'
[Unit]
Description=records what the nexfield units did
After=basic.target
[Service]
Type=oneshot
EnvironmentFile=-/etc/nexfield-probe.env
ExecStart=/usr/local/bin/nexfield-probe $MODE
[Install]
WantedBy=multi-user.target
UNIT
chroot "$r" systemctl enable nexfield-probe.service >/dev/null 2>&1
mkdir -p "$r/etc/systemd/journald.conf.d" && printf "[Journal]\nForwardToConsole=yes\nMaxLevelConsole=info\n" > "$r/etc/systemd/journald.conf.d/console.conf"
# Never wait for a network in the container.
chroot "$r" systemctl mask systemd-networkd-wait-online.service >/dev/null 2>&1 || true

boot_container() {
	rm -f "$r/root/results"
	timeout "${BOOT_TIMEOUT:-180}" systemd-nspawn -q --register=no --keep-unit -M nexfield-test -D "$r" -b --console=pipe \
		--bind="$boot:/boot/firmware" >"$work/console.log" 2>&1 || true
	if [ ! -s "$r/root/results" ]; then
		echo "test-system: the probe recorded nothing; console:" >&2
		tail -40 "$work/console.log" >&2
		exit 1
	fi
	sed 's/^/  | /' "$r/root/results"
}
has() { grep -q "$1" "$r/root/results"; }

echo "boot 1: good configuration on the boot partition"
printf 'peer:\n  driver: rylr\n  region: us915\n  sf: 9\n  psk-file: link.key\n' > "$boot/nexfield.yaml"
openssl rand -hex 32 > "$boot/link.key" 2>/dev/null || head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$boot/link.key"
echo "MODE=good" > "$r/etc/nexfield-probe.env"
t=$(date +%s)
boot_container
echo "  (boot and probe: $(( $(date +%s) - t )) s)"
check "unit active/running through Type=notify" has "^active=active/running"
check "type notify, watchdog 3s" has "^type=notify watchdog=3s"
check "status text from STATUS=" has "^status=selftest serving as uid"
check "runs as nexfield" has "^user=nexfield"
check "groups gpio spi dialout" sh -c "grep '^groups=' '$r/root/results' | grep -q gpio && grep '^groups=' '$r/root/results' | grep -q spi && grep '^groups=' '$r/root/results' | grep -q dialout"
check "state dir 700 nexfield" has "^statedir=700 nexfield"
check "firstboot succeeded" has "^firstboot=success"
check "link key imported 600 nexfield" has "^key=600 nexfield"
check "config rewritten to /etc/nexfield/link.key" has "^config=psk-file:/etc/nexfield/link.key"
check "yaml and key gone from the boot partition" sh -c "grep '^bootfiles=' '$r/root/results' | grep -v 'link.key' | grep -v 'nexfield.yaml' | grep -q nexfield-imported.txt"
check "stalled loop: restarted by the watchdog" sh -c "grep -q '^restarts=[1-9]' '$r/root/results'"
check "journal: watchdog timeout" has "^journal: .*atchdog timeout"
check "journal: health check failure logged" has "^journal: .*health check failed"
check "active again with a new process" has "^after=active pid_changed=yes"
check "stop: inactive, result success" has "^stopped=inactive result=success"

echo "boot 2: a mistake in nexfield.yaml"
printf 'peer:\n  driver: rylr\n  sf: 13\n  psk-file: link.key\n' > "$boot/nexfield.yaml"
cp "$boot/nexfield.yaml" "$work/bad.yaml"
openssl rand -hex 32 > "$boot/link.key" 2>/dev/null || head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$boot/link.key"
echo "MODE=bad" > "$r/etc/nexfield-probe.env"
t=$(date +%s)
boot_container
echo "  (boot and probe: $(( $(date +%s) - t )) s)"
check "firstboot failed" has "^firstboot=exit-code"
check "peer not started" has "^peer=inactive"
check "error report on the boot partition" test -s "$boot/nexfield-error.txt"
check "report names the problem" grep -q "peer: sf=13 (section peer)" "$boot/nexfield-error.txt"
check "files left for the technician" cmp -s "$boot/nexfield.yaml" "$work/bad.yaml"
check "journal: rejection logged" has "^journal: .*configuration rejected"
echo "test-system: $fails failure(s) in $(( $(date +%s) - start )) s"
[ "$fails" -eq 0 ]

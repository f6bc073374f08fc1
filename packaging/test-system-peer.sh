#!/usr/bin/env bash
# The real peer under its real unit: boot a debootstrapped Debian root with
# systemd-nspawn, the amd64 .deb installed, and run "nexfield peer" from
# nexfield-peer.service, hardening and all, against an emulated RYLR998 on a
# pseudo-terminal (radio emulate of the development binary, in a helper
# unit). Checked:
#   - the unit reaches active through Type=notify only after the radio is up,
#     with the peer's own status line; it keeps running past several
#     WatchdogSec= periods, so the real daemon pings;
#   - a message sent over the emulated air from a second module is answered;
#   - the process runs as nexfield with seccomp, no capabilities and
#     NoNewPrivileges;
#   - a frozen process (SIGSTOP: every loop stalls) stops the pings, systemd
#     kills it on the watchdog and restarts it, and the new process serves;
#   - systemctl stop ends it cleanly.
# Test-only drop-in: WatchdogSec=4s, RestartSec=1s, TimeoutAbortSec=2s (a
# stopped process cannot take its SIGABRT), and DeviceAllow=char-pts rw,
# the pseudo-terminal standing in for the char-ttyAMA UART. After the watchdog
# kill the emulator is restarted too (see the probe: a pseudo-terminal, unlike
# a UART, keeps a killed holder's exclusive-open flag).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need systemd-nspawn:systemd-container
start=$(date +%s)
installed_root peer-system
lab_binary

head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$r/etc/nexfield/link.key"
echo >> "$r/etc/nexfield/link.key"
chroot "$r" chown nexfield:nexfield /etc/nexfield/link.key
chmod 0600 "$r/etc/nexfield/link.key"
cat > "$r/etc/nexfield/nexfield.yaml" <<'YAML'
peer:
  driver: rylr
  port: /run/nexfield-emu/rylr0
  psk-file: /etc/nexfield/link.key
YAML
cat > "$r/etc/systemd/system/nexfield-emu.service" <<'UNIT'
[Unit]
Description=two emulated RYLR998 modules sharing one air
[Service]
User=nexfield
RuntimeDirectory=nexfield-emu
ExecStart=/usr/local/bin/nexfield-lab radio emulate --modules 2 --link /run/nexfield-emu/rylr --config /dev/null
ExecStartPost=/bin/sh -c 'until [ -e /run/nexfield-emu/rylr1 ]; do sleep 0.1; done'
UNIT
mkdir -p "$r/etc/systemd/system/nexfield-peer.service.d"
cat > "$r/etc/systemd/system/nexfield-peer.service.d/test.conf" <<'UNIT'
[Unit]
Requires=nexfield-emu.service
After=nexfield-emu.service
[Service]
DeviceAllow=char-pts rw
WatchdogSec=4s
RestartSec=1s
TimeoutAbortSec=2s
UNIT
chroot "$r" systemctl enable nexfield-peer.service >/dev/null 2>&1
cat > "$r/usr/local/bin/nexfield-probe" <<'PROBE'
#!/bin/bash
exec > /root/results 2>&1
peer=nexfield-peer.service
show() { systemctl show -p "$2" --value "$1"; }
wait_for() { # wait_for SECONDS COMMAND...
	local end=$(( $(date +%s) + $1 )); shift
	until "$@"; do [ "$(date +%s)" -lt "$end" ] || return 1; sleep 0.2; done
}
send() { timeout 60 /usr/bin/nexfield send --config /dev/null --port /run/nexfield-emu/rylr1 --psk-file /etc/nexfield/link.key "$@" 2>&1 | head -1; }
wait_for 60 sh -c "[ \$(systemctl show -p ActiveState --value $peer) = active ]" || true
echo "active=$(show $peer ActiveState)/$(show $peer SubState) type=$(show $peer Type)"
echo "status=$(show $peer StatusText)"
pid=$(show $peer MainPID)
echo "user=$(stat -c %U /proc/$pid)"
echo "seccomp=$(awk '/^Seccomp:/{print $2}' /proc/$pid/status) nnp=$(awk '/^NoNewPrivs:/{print $2}' /proc/$pid/status) capbnd=$(awk '/^CapBnd:/{print $2}' /proc/$pid/status)"
sleep 10
echo "after10s=$(show $peer ActiveState) restarts=$(show $peer NRestarts) samepid=$([ "$(show $peer MainPID)" = "$pid" ] && echo yes || echo no)"
echo "answer1=$(send 'the new gateway works great')"
kill -STOP "$pid"
wait_for 40 sh -c "[ \$(systemctl show -p NRestarts --value $peer) -ge 1 ]" || true
echo "restarts=$(show $peer NRestarts)"
journalctl -u $peer --no-pager -o cat | grep -m1 -i "watchdog timeout" | sed 's/^/journal: /'
# A pseudo-terminal keeps the killed process's exclusive-open flag (TIOCEXCL)
# while the emulator holds the master, so the new process would find the
# module "busy"; a UART's tty is released at its last close. Restarting the
# emulator (Requires= restarts the peer with it) stands in for that.
wait_for 20 sh -c "journalctl -u $peer --no-pager -o cat | grep -q 'Serial port busy'" && echo "pty_busy=yes"
systemctl restart nexfield-emu.service
wait_for 40 sh -c "[ \$(systemctl show -p ActiveState --value $peer) = active ]" || true
echo "again=$(show $peer ActiveState) newpid=$([ "$(show $peer MainPID)" != "$pid" ] && echo yes || echo no)"
echo "answer2=$(send 'this radio keeps failing and I hate it')"
systemctl stop $peer
echo "stopped=$(show $peer ActiveState) result=$(show $peer Result)"
systemctl poweroff --no-block
PROBE
chmod 0755 "$r/usr/local/bin/nexfield-probe"
cat > "$r/etc/systemd/system/nexfield-probe.service" <<'UNIT'
[Unit]
Description=records what the nexfield peer unit did
After=basic.target
[Service]
Type=oneshot
ExecStart=/usr/local/bin/nexfield-probe
[Install]
WantedBy=multi-user.target
UNIT
chroot "$r" systemctl enable nexfield-probe.service >/dev/null 2>&1
chroot "$r" systemctl mask systemd-networkd-wait-online.service >/dev/null 2>&1 || true

echo "boot: nexfield-peer.service with an emulated RYLR998"
boot_probe test-system-peer "${BOOT_TIMEOUT:-240}"
has() { grep -q "$1" "$r/root/results"; }
check "active/running through Type=notify" has "^active=active/running type=notify"
check "status line from the peer" has "^status=listening as 2;"
check "runs as nexfield" has "^user=nexfield"
check "seccomp filter, no_new_privs, empty capability bounding set" has "^seccomp=2 nnp=1 capbnd=0000000000000000"
check "alive past 2.5 watchdog periods: the daemon pings" has "^after10s=active restarts=0 samepid=yes"
check "message answered over the emulated air" has "^answer1=positive"
check "frozen process: restarted by the watchdog" sh -c "grep -q '^restarts=[1-9]' '$r/root/results'"
check "journal: watchdog timeout" has "^journal: .*atchdog timeout"
check "active again with a new process" has "^again=active newpid=yes"
check "the new process answers" has "^answer2=negative"
check "stop: inactive, result success" has "^stopped=inactive result=success"
echo "test-system-peer: $fails failure(s) in $(( $(date +%s) - start )) s"
[ "$fails" -eq 0 ]

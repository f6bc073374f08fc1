#!/usr/bin/env bash
# The real agent under its real unit: boot a debootstrapped Debian root with
# systemd-nspawn, the amd64 .deb installed, and run "nexfield agent" from
# nexfield-agent.service, hardening and all, against the demo's NATS server
# and Nex node stand-in (nexfield demo --keep of the development binary, in a
# helper unit). Checked:
#   - "systemctl start" returns once the agent has registered (Type=notify,
#     READY=1 after registration), with the agent's status line;
#   - it keeps running past several WatchdogSec= periods (the daemon pings);
#   - the process runs as nexfield with seccomp, no capabilities and
#     NoNewPrivileges;
#   - a frozen process (SIGSTOP) stops the pings; systemd kills it on the
#     watchdog and restarts it, and the new process registers again;
#   - a binary copied into the state directory runs as a child under the
#     agent's sandbox (the shape of a workload; ExecStartPost= shares it);
#   - systemctl stop ends it cleanly.
# Test-only drop-in: WatchdogSec=4s, RestartSec=1s, TimeoutAbortSec=2s (a
# stopped process cannot act on SIGABRT).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need systemd-nspawn:systemd-container
start=$(date +%s)
installed_root agent-system
lab_binary

cat > "$r/etc/systemd/system/nexfield-demo.service" <<'UNIT'
[Unit]
Description=NATS, JetStream and a Nex node stand-in for the agent (nexfield demo)
[Service]
ExecStart=/usr/local/bin/nexfield-lab demo --keep --message hello
UNIT
mkdir -p "$r/etc/systemd/system/nexfield-agent.service.d"
cat > "$r/etc/systemd/system/nexfield-agent.service.d/test.conf" <<'UNIT'
[Service]
WatchdogSec=4s
RestartSec=1s
TimeoutAbortSec=2s
# A workload's shape, inside the agent's sandbox (ExecStartPost= gets the
# same user, seccomp filter, namespaces and device policy): a binary written
# into the state directory and run from there as a child.
ExecStartPost=/bin/sh -c 'cp /usr/bin/nexfield "$STATE_DIRECTORY/wl" && "$STATE_DIRECTORY/wl" classify "the new gateway works great" > "$STATE_DIRECTORY/wl.out" 2>&1; echo "rc=$?" >> "$STATE_DIRECTORY/wl.out"'
UNIT
cat > "$r/usr/local/bin/nexfield-probe" <<'PROBE'
#!/bin/bash
exec > /root/results 2>&1
agent=nexfield-agent.service
show() { systemctl show -p "$2" --value "$1"; }
wait_for() { # wait_for SECONDS COMMAND...
	local end=$(( $(date +%s) + $1 )); shift
	until "$@"; do [ "$(date +%s)" -lt "$end" ] || return 1; sleep 0.2; done
}
systemctl start nexfield-demo.service
wait_for 120 sh -c "journalctl -u nexfield-demo.service -o cat --no-pager | grep -q 'nats --server nats://'" || true
url=$(journalctl -u nexfield-demo.service -o cat --no-pager | grep -o -m1 'nats://127.0.0.1:[0-9]*')
echo "nats=$url"
printf 'agent:\n  server: %s\n  name: field-agent\n  heartbeat: 1s\n' "$url" > /etc/nexfield/nexfield.yaml
t0=$(date +%s%N)
timeout 120 systemctl start $agent
echo "start_returned_ms=$(( ($(date +%s%N) - t0) / 1000000 ))"
echo "active=$(show $agent ActiveState)/$(show $agent SubState) type=$(show $agent Type)"
echo "status=$(show $agent StatusText)"
pid=$(show $agent MainPID)
echo "user=$(stat -c %U /proc/$pid)"
echo "seccomp=$(awk '/^Seccomp:/{print $2}' /proc/$pid/status) nnp=$(awk '/^NoNewPrivs:/{print $2}' /proc/$pid/status) capbnd=$(awk '/^CapBnd:/{print $2}' /proc/$pid/status)"
echo "workload=$(tr '\n' ' ' < /var/lib/nexfield/wl.out)"
journalctl -u $agent -o cat --no-pager | grep -m1 -i "regist" | cut -c1-160 | sed 's/^/journal: /'
sleep 10
echo "after10s=$(show $agent ActiveState) restarts=$(show $agent NRestarts) samepid=$([ "$(show $agent MainPID)" = "$pid" ] && echo yes || echo no)"
kill -STOP "$pid"
wait_for 40 sh -c "[ \$(systemctl show -p NRestarts --value $agent) -ge 1 ]" || true
echo "restarts=$(show $agent NRestarts)"
journalctl -u $agent --no-pager -o cat | grep -m1 -i "watchdog timeout" | sed 's/^/journal: /'
wait_for 60 sh -c "[ \$(systemctl show -p ActiveState --value $agent) = active ]" || true
echo "again=$(show $agent ActiveState) newpid=$([ "$(show $agent MainPID)" != "$pid" ] && echo yes || echo no)"
echo "status2=$(show $agent StatusText)"
systemctl stop $agent
echo "stopped=$(show $agent ActiveState) result=$(show $agent Result)"
systemctl poweroff --no-block
PROBE
chmod 0755 "$r/usr/local/bin/nexfield-probe"
cat > "$r/etc/systemd/system/nexfield-probe.service" <<'UNIT'
[Unit]
Description=records what the nexfield agent unit did
After=basic.target
[Service]
Type=oneshot
TimeoutStartSec=10min
ExecStart=/usr/local/bin/nexfield-probe
[Install]
WantedBy=multi-user.target
UNIT
chroot "$r" systemctl enable nexfield-probe.service >/dev/null 2>&1
chroot "$r" systemctl mask systemd-networkd-wait-online.service >/dev/null 2>&1 || true

echo "boot: nexfield-agent.service against the demo's NATS and Nex node stand-in"
boot_probe test-system-agent "${BOOT_TIMEOUT:-300}"
has() { grep -q "$1" "$r/root/results"; }
check "active/running through Type=notify" has "^active=active/running type=notify"
check "status line: registered with the node" has "^status=registered as .* with node "
check "registered again after the restart" has "^status2=registered as "
check "runs as nexfield" has "^user=nexfield"
check "seccomp filter, no_new_privs, empty capability bounding set" has "^seccomp=2 nnp=1 capbnd=0000000000000000"
check "a binary from the state dir runs under the agent's sandbox" sh -c "grep '^workload=' '$r/root/results' | grep -q 'positive.*rc=0'"
check "alive past 2.5 watchdog periods: the daemon pings" has "^after10s=active restarts=0 samepid=yes"
check "frozen process: restarted by the watchdog" sh -c "grep -q '^restarts=[1-9]' '$r/root/results'"
check "journal: watchdog timeout" has "^journal: .*atchdog timeout"
check "active again with a new process" has "^again=active newpid=yes"
check "stop: inactive, result success" has "^stopped=inactive result=success"
echo "test-system-agent: $fails failure(s) in $(( $(date +%s) - start )) s"
[ "$fails" -eq 0 ]

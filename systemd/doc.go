// Package systemd tells the service manager the truth about the daemon: READY=1
// once it really serves, a human STATUS= line, STOPPING=1 on shutdown, and
// WATCHDOG=1 pings only while the main loops pass their health check, so a stuck
// radio loop or a dead NATS loop gets the unit restarted.
//
// Everything is a no-op when NOTIFY_SOCKET is unset (a terminal, a test, a
// laptop), so commands call it unconditionally. Messages go through
// github.com/coreos/go-systemd/v22/daemon, whose non-Unix fallback is also a
// no-op.
//
// The unit files next to this package (nexfield-agent.service,
// nexfield-peer.service, nexfield-firstboot.service, sysusers.d/nexfield.conf)
// are what the .deb installs; the package tests run systemd-analyze over them.
package systemd

package demo

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/nexfield/nexfield/radio/lora"
	"github.com/nexfield/nexfield/radio/sim"
)

// Peers of the demo: name, radio address.
var peers = []struct {
	name string
	addr int
}{{"north", 2}, {"south", 3}}

// startChannel opens the simulated 915 MHz channel shared by the processes:
// SF7/BW125, CR 4/5, 8-symbol preamble, the US915 dwell limit enforced by
// every radio, and the configured frame loss.
func (e *env) startChannel(ctx context.Context) error {
	hubCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	hub, err := sim.ListenHub(hubCtx, "127.0.0.1:0", &sim.HubOpts{
		Opts:   sim.Opts{Params: lora.Params{SpreadingFactor: 7, BandwidthHz: 125000}, Channel: sim.Channel{Loss: e.o.Loss}, Seed: uint64(e.o.Seed)},
		RSSI:   -97,
		SNR:    6.5,
		Logger: e.log.With("component", "air"),
	})
	if err != nil {
		cancel()
		return err
	}
	e.hub, e.air = hub.Addr(), hub
	e.onStop(func() { cancel(); hub.Close() })
	return nil
}

// Stations that get an emulated RYLR998 module, in module order.
// "bench" is left free for `nexfield send` while the demo keeps running.
var stations = []string{"relay-1", "relay-4", "north", "south", "bench"}

// startModules runs emulated RYLR998 modules on pseudo-terminals, their
// antennas on the simulated channel, so the relay and the peers drive them
// through the real UART driver (AT commands, +RCV parsing, module timing).
func (e *env) startModules(ctx context.Context) error {
	if !e.o.RYLR {
		return nil
	}
	link := filepath.Join(e.dir, "rylr")
	if _, err := e.child(ctx, "modules", "radio", "emulate", "--modules", fmt.Sprint(len(stations)),
		"--hub", e.hub, "--link", link); err != nil {
		return err
	}
	deadline := time.Now().Add(15 * time.Second)
	for i := range stations {
		for {
			if _, err := os.Stat(fmt.Sprintf("%s%d", link, i)); err == nil {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("emulated modules did not come up; their log:\n%s", e.logTail("modules"))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}

// radioArgs are the radio flags of the process at station name: its
// emulated RYLR998 module, or a radio straight on the simulated channel.
func (e *env) radioArgs(name string) []string {
	if e.o.RYLR {
		for i, s := range stations {
			if s == name {
				return []string{"--driver", "rylr", "--port", fmt.Sprintf("%s%d", filepath.Join(e.dir, "rylr"), i), "--region", "us915"}
			}
		}
	}
	return []string{"--driver", "sim", "--hub", e.hub, "--region", "us915", "--radio-name", name}
}

func (e *env) startPeers(ctx context.Context) error {
	for _, p := range peers {
		args := append([]string{"peer", "--address", fmt.Sprint(p.addr), "--psk-file", e.psk,
			"--state-dir", filepath.Join(e.dir, "peer-"+p.name), "--echo", "--log-level", "debug"}, e.radioArgs(p.name)...)
		if _, err := e.child(ctx, "peer-"+p.name, args...); err != nil {
			return err
		}
	}
	// A peer is up once it logs that it listens.
	deadline := time.Now().Add(20 * time.Second)
	for _, p := range peers {
		for !e.logContains("peer-"+p.name, "peer listening") {
			if time.Now().After(deadline) {
				return fmt.Errorf("peer %s did not come up; its log:\n%s", p.name, e.logTail("peer-"+p.name))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return nil
}

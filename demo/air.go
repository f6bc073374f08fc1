package demo

import (
	"context"
	"fmt"
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

// radioArgs are the radio flags of a process on the simulated channel.
func (e *env) radioArgs(name string) []string {
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
	// A peer is up once its radio has joined the channel.
	deadline := time.Now().Add(15 * time.Second)
	for _, p := range peers {
		for {
			if _, ok := e.hubStats(p.name); ok {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("peer %s did not join the channel; its log:\n%s", p.name, e.logTail("peer-"+p.name))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return nil
}

func (e *env) hubStats(name string) (sim.Stats, bool) { return e.air.Stats(name) }

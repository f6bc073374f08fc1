package demo

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// MigrationReport is what `nexfield demo --migrate` measures.
type MigrationReport struct {
	Requests   int           `json:"requests"`
	Failed     int           `json:"failed"`
	Errors     []string      `json:"errors,omitempty"`
	LongestGap time.Duration `json:"longest_gap_ns"`
	// Served counts answers per relay instance (radio address).
	Served map[int]int   `json:"served_by_relay"`
	Moved  time.Duration `json:"move_took_ns"`
}

// migrate keeps requests flowing while the relay moves from the first agent
// to the second: the new instance starts and joins the service's queue
// group, then the old one is undeployed; it stops taking requests at once and
// finishes the ones it holds, so no caller sees an error.
func (e *env) migrate(ctx context.Context) error {
	rep := MigrationReport{Served: map[int]int{}}
	var mu sync.Mutex
	var last time.Time
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		samples := Samples()[:3]
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-ctx.Done():
				return
			default:
			}
			a := e.askOne(ctx, samples[i%len(samples)])
			now := time.Now()
			mu.Lock()
			rep.Requests++
			if a.Error != "" {
				rep.Failed++
				rep.Errors = append(rep.Errors, a.Error)
			} else {
				rep.Served[a.Via]++
				if !last.IsZero() && now.Sub(last) > rep.LongestGap {
					rep.LongestGap = now.Sub(last)
				}
				last = now
			}
			mu.Unlock()
		}
	}()
	fmt.Fprintf(e.o.Out, "requests flowing through the relay on %s …\n", e.agents[0].name)
	sleepCtx(ctx, 3*time.Second)
	oldIDs := e.workloadsOn(e.agents[0].name)
	start := time.Now()
	fmt.Fprintf(e.o.Out, "deploying a second relay on %s …\n", e.agents[1].name)
	if _, err := e.deployOn(ctx, e.agents[1], 4); err != nil {
		close(stop)
		wg.Wait()
		return fmt.Errorf("deploy on %s: %w", e.agents[1].name, err)
	}
	if err := e.waitInstances(ctx, "nexfield-relay", 2, 20*time.Second); err != nil {
		close(stop)
		wg.Wait()
		return err
	}
	fmt.Fprintf(e.o.Out, "undeploying the relay on %s …\n", e.agents[0].name)
	for _, id := range oldIDs {
		if _, err := e.node.Undeploy(ctx, "default", id); err != nil {
			close(stop)
			wg.Wait()
			return fmt.Errorf("undeploy %s: %w", id, err)
		}
	}
	e.forget(e.agents[0].name)
	rep.Moved = time.Since(start)
	sleepCtx(ctx, 3*time.Second)
	close(stop)
	wg.Wait()
	e.res.Migration = &rep
	e.printMigration(rep)
	if rep.Failed > 0 {
		return fmt.Errorf("demo: %d of %d requests failed during the move", rep.Failed, rep.Requests)
	}
	return nil
}

func (e *env) forget(agentName string) {
	e.stopMu.Lock()
	delete(e.deployed, agentName)
	e.stopMu.Unlock()
}

func (e *env) waitInstances(ctx context.Context, name string, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		inbox := e.nc.NewRespInbox()
		sub, err := e.nc.SubscribeSync(inbox)
		if err != nil {
			return err
		}
		_ = e.nc.PublishRequest("$SRV.PING."+name, inbox, nil)
		got := 0
		for {
			if _, err := sub.NextMsg(300 * time.Millisecond); err != nil {
				break
			}
			got++
		}
		sub.Unsubscribe()
		if got >= n {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return fmt.Errorf("fewer than %d instances of %s after %s", n, name, timeout)
}

func (e *env) printMigration(r MigrationReport) {
	if e.o.JSON {
		writeJSON(e.o.Out, r)
		return
	}
	fmt.Fprintf(e.o.Out, "\nrelay moved in %s: %d requests, %d failed, longest gap between answers %s; answered by relay address:",
		r.Moved.Round(time.Millisecond), r.Requests, r.Failed, r.LongestGap.Round(time.Millisecond))
	for addr, n := range r.Served {
		fmt.Fprintf(e.o.Out, " %d→%d", addr, n)
	}
	fmt.Fprintln(e.o.Out)
	for _, err := range r.Errors {
		fmt.Fprintln(e.o.Out, "  error:", err)
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

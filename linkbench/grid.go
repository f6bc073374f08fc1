package linkbench

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/nexfield/nexfield/radio/lora"
	"github.com/nexfield/nexfield/radio/sim"
)

// NamedChannel is a channel model with a label and the mean frame loss it
// implies (the x coordinate of the plot).
type NamedChannel struct {
	Name    string
	Loss    float64
	Channel sim.Channel
}

// IID is i.i.d. frame loss p in both directions.
func IID(p float64) NamedChannel {
	return NamedChannel{Name: "iid", Loss: p, Channel: sim.Channel{Loss: p}}
}

// DefaultBurst is the bursty channel of the bench: Gilbert–Elliott with
// bursts of 1/R ≈ 3.3 frames, 70 % loss inside a burst, 1 % outside, about
// 11 % mean loss.
func DefaultBurst() sim.GilbertElliott {
	return sim.GilbertElliott{P: 0.05, R: 0.3, H: 0.3, K: 0.99}
}

// Bursty is the bench's Gilbert–Elliott channel (ge may be nil for the default).
func Bursty(ge *sim.GilbertElliott) NamedChannel {
	g := DefaultBurst()
	if ge != nil {
		g = *ge
	}
	return NamedChannel{Name: "ge", Loss: g.MeanLoss(), Channel: sim.Channel{Burst: &g}}
}

// Outages is a perfect channel taken away for o.For once every o.Every.
func Outages(o sim.Outage) NamedChannel {
	return NamedChannel{Name: "outage", Loss: float64(o.For) / float64(o.Every), Channel: sim.Channel{Outage: &o}}
}

// Grid is a full bench: every scheme × size × channel, Runs runs each.
type Grid struct {
	Schemes  []Scheme
	Sizes    []int
	Channels []NamedChannel
	Runs     int
	Params   lora.Params
	Seed     uint64
}

// Cell is one line of the bench's output.
type Cell struct {
	Scheme       string  `json:"scheme"`
	Size         int     `json:"size"`
	Loss         float64 `json:"loss"`
	Channel      string  `json:"channel"`
	GoodputRatio float64 `json:"goodput_ratio"`
	// Delivered is application bytes delivered intact over all runs.
	Delivered int64 `json:"delivered"`
	Runs      int   `json:"runs"`
	Failures  int   `json:"failures"`
	// AirtimeS is the total airtime of all runs, both directions, seconds.
	AirtimeS float64 `json:"airtime_s"`
	// Frames is the mean number of frames per run.
	Frames float64 `json:"frames_per_run"`
	// ElapsedS is the mean virtual duration of a run (airtime plus waits).
	ElapsedS float64 `json:"elapsed_s"`
}

// Run runs the grid; progress (may be nil) sees each cell as it completes.
func (g Grid) Run(progress func(Cell)) []Cell {
	var out []Cell
	for _, size := range g.Sizes {
		for _, ch := range g.Channels {
			for _, s := range g.Schemes {
				cfg := Config{Params: g.Params, Channel: ch.Channel, Seed: g.Seed}
				sum := Summarize(s, cfg, size, g.Runs)
				c := Cell{
					Scheme: s.Name(), Size: size, Loss: ch.Loss, Channel: ch.Name,
					GoodputRatio: sum.GoodputRatio, Delivered: sum.Delivered, Runs: sum.Runs,
					Failures: sum.Failures, AirtimeS: sum.Airtime.Seconds(),
					ElapsedS: sum.Elapsed.Seconds(),
				}
				if sum.Runs > 0 {
					c.Frames = float64(sum.Frames) / float64(sum.Runs)
				}
				if progress != nil {
					progress(c)
				}
				out = append(out, c)
			}
		}
	}
	return out
}

// ExchangeCell is the airtime of one request/answer exchange.
type ExchangeCell struct {
	Scheme   string  `json:"scheme"`
	Request  int     `json:"request"`
	Answer   int     `json:"answer"`
	AirtimeS float64 `json:"airtime_s"`
	Frames   int     `json:"frames"`
}

// Exchanges measures one loss-free request/answer exchange per scheme.
func (g Grid) Exchanges(req, answer int) []ExchangeCell {
	var out []ExchangeCell
	for _, s := range g.Schemes {
		r := Exchange(s, Config{Params: g.Params, Seed: g.Seed}, message(req, 1), message(answer, 2))
		c := ExchangeCell{Scheme: s.Name(), Request: req, Answer: answer, AirtimeS: r.Airtime.Seconds(), Frames: r.Frames}
		if !r.OK {
			c.AirtimeS = -1
		}
		out = append(out, c)
	}
	return out
}

// WriteTable prints cells and exchanges for people.
func WriteTable(w io.Writer, p lora.Params, cells []Cell, ex []ExchangeCell) error {
	fmt.Fprintf(w, "goodput ratio = delivered bytes / airtime (both directions) / PHY limit %.1f B/s (255-byte frames back to back at %v, 8-symbol preamble)\n\n",
		PHYLimit(p), p.Resolved())
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "size\tchannel\tloss\tscheme\tgoodput ratio\tfailures\truns\tframes/run\tairtime/run\t")
	for _, c := range cells {
		per := time.Duration(0)
		if c.Runs > 0 {
			per = time.Duration(c.AirtimeS / float64(c.Runs) * float64(time.Second)).Round(time.Millisecond)
		}
		fmt.Fprintf(tw, "%d\t%s\t%.1f%%\t%s\t%.3f\t%d\t%d\t%.1f\t%v\t\n",
			c.Size, c.Channel, c.Loss*100, c.Scheme, c.GoodputRatio, c.Failures, c.Runs, c.Frames, per)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(ex) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "exchange\tscheme\tframes\tairtime\t")
		for _, e := range ex {
			fmt.Fprintf(tw, "%d B + %d B\t%s\t%d\t%.1f ms\t\n", e.Request, e.Answer, e.Scheme, e.Frames, e.AirtimeS*1000)
		}
		return tw.Flush()
	}
	return nil
}

// WriteJSON prints one JSON object per cell and per exchange, one per line.
func WriteJSON(w io.Writer, cells []Cell, ex []ExchangeCell) error {
	enc := json.NewEncoder(w)
	for _, c := range cells {
		if err := enc.Encode(c); err != nil {
			return err
		}
	}
	for _, e := range ex {
		if err := enc.Encode(struct {
			Kind string `json:"kind"`
			ExchangeCell
		}{"exchange", e}); err != nil {
			return err
		}
	}
	return nil
}

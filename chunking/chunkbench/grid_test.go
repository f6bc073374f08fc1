package chunkbench

import (
	"os"
	"testing"

	"github.com/nexfield/nexfield/linkbench"
)

// TestGrid prints the bench grid (nexfield, SCHC, Meshtastic-style) when
// NEXFIELD_LINK_GRID is set: figures for the README, not assertions.
func TestGrid(t *testing.T) {
	if os.Getenv("NEXFIELD_LINK_GRID") == "" {
		t.Skip("set NEXFIELD_LINK_GRID=1 to print the goodput grid")
	}
	g := linkbench.Grid{
		Schemes:  append([]linkbench.Scheme{Scheme{}}, linkbench.Schemes()...),
		Sizes:    []int{2048, 16384},
		Channels: []linkbench.NamedChannel{linkbench.IID(0), linkbench.IID(0.1), linkbench.IID(0.3), linkbench.Bursty(nil)},
		Runs:     1000,
		Seed:     1,
	}
	cells := g.Run(nil)
	ex := g.Exchanges(100, 50)
	if err := linkbench.WriteTable(os.Stdout, g.Params, cells, ex); err != nil {
		t.Fatal(err)
	}
}

package inference

import (
	"bytes"
	"context"
	"runtime"
	"testing"
)

// Two training runs give the same bytes and the same report, and they equal
// the embedded default model on every architecture (amd64, and arm64 and
// armv6 under qemu, were checked).
func TestTrainIsDeterministic(t *testing.T) {
	if testing.Short() {
		t.Skip("trains twice")
	}
	a, err := Train(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Train(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Model, b.Model) {
		t.Fatal("two runs produced different model bytes")
	}
	var ra, rb bytes.Buffer
	a.Report.WriteTo(&ra)
	b.Report.WriteTo(&rb)
	if ra.String() != rb.String() {
		t.Fatalf("reports differ:\n%s\n%s", ra.String(), rb.String())
	}
	if len(a.Model) > 256<<10 {
		t.Errorf("model is %d bytes, budget 256 KiB", len(a.Model))
	}
	if !bytes.Equal(a.Model, defaultModel) {
		t.Errorf("the trained model differs from the embedded one on %s: stale (run `make model`) or not reproducible", runtime.GOARCH)
	}
}

func TestHeldOutNeverTrained(t *testing.T) {
	ex := Examples()
	seen := map[string]int{}
	n := 0
	for _, e := range ex {
		seen[e.Text]++
		if e.Fold == HeldOutFold {
			n++
		}
	}
	if n < len(ex)/7 || n > len(ex)/3 {
		t.Errorf("held-out fold has %d of %d sentences", n, len(ex))
	}
	for s, c := range seen {
		if c > 1 {
			t.Errorf("sentence %q appears %d times after deduplication", s, c)
		}
	}
}

package train

import (
	"bytes"
	"context"
	"runtime"
	"testing"

	"github.com/nexfield/nexfield/inference"
)

// A training run gives the bytes of the embedded default model, which an
// earlier run (`make model`) wrote: training is reproducible across runs
// and, with this test run under qemu, across architectures (amd64, arm64
// and armv6 were checked).
func TestTrainIsDeterministic(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a model")
	}
	a, err := Run(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Model) > 256<<10 {
		t.Errorf("model is %d bytes, budget 256 KiB", len(a.Model))
	}
	if !bytes.Equal(a.Model, inference.DefaultModel()) {
		t.Errorf("the trained model differs from the embedded one on %s: stale (run `make model`) or not reproducible", runtime.GOARCH)
	}
}

func TestHeldOutNeverTrained(t *testing.T) {
	ex, err := Examples()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	held, all := map[string]int{}, map[string]int{}
	for _, e := range ex {
		seen[e.Text]++
		all[e.Source]++
		if e.Fold == HeldOutFold {
			held[e.Source]++
		}
	}
	// The UCI folds predate the rated sentences: adding those must not move
	// a UCI sentence in or out of the held-out fold (556 of 2979).
	if n, h := all["amazon"]+all["imdb"]+all["yelp"], held["amazon"]+held["imdb"]+held["yelp"]; n != 2979 || h != 556 {
		t.Errorf("UCI: %d sentences, %d held out; want 2979, 556", n, h)
	}
	// Every source, of both corpora, has its own held-out share.
	for _, src := range []string{"amazon", "imdb", "yelp", "products", "movies", "tweets"} {
		if n := held[src]; n < all[src]/7 || n > all[src]/3 {
			t.Errorf("%s: held-out fold has %d of %d sentences", src, n, all[src])
		}
	}
	for s, c := range seen {
		if c > 1 {
			t.Errorf("sentence %q appears %d times after deduplication", s, c)
		}
	}
}

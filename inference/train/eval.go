package train

import "sort"

// confusion counts sentences by true and predicted output column
// (negative, neutral, positive).
type confusion [3][3]int

// ThreeWay summarises 3-way labelling of rated sentences.
type ThreeWay struct {
	N        int
	Accuracy float64    // share labelled as their raters did
	Recall   [3]float64 // per true class: negative, neutral, positive
	Count    [3]int     // sentences per true class
	// Macro is the mean of the recalls of the classes present, so the
	// smaller neutral class counts as much as each pole.
	Macro float64
}

func (c *confusion) summary() ThreeWay {
	var t ThreeWay
	ok, classes := 0, 0
	for i := range 3 {
		for j := range 3 {
			t.Count[i] += c[i][j]
		}
		t.N += t.Count[i]
		ok += c[i][i]
		if t.Count[i] > 0 {
			t.Recall[i] = float64(c[i][i]) / float64(t.Count[i])
			t.Macro += t.Recall[i]
			classes++
		}
	}
	if t.N > 0 {
		t.Accuracy = float64(ok) / float64(t.N)
		t.Macro /= float64(classes)
	}
	return t
}

// ThreeWayTally counts 3-way predictions of rated sentences by source and
// over all of them (key "all"). The zero value is not usable; make one with
// make(ThreeWayTally) or a literal.
type ThreeWayTally map[string]*confusion

// Add counts e, predicted as output column pred (0 negative, 1 neutral,
// 2 positive), under its source and under "all".
func (t ThreeWayTally) Add(e Example, pred int) {
	for _, k := range []string{e.Source, "all"} {
		if t[k] == nil {
			t[k] = &confusion{}
		}
		t[k][col(e.Label)][pred]++
	}
}

// Summary is the ThreeWay of every key.
func (t ThreeWayTally) Summary() map[string]ThreeWay {
	out := make(map[string]ThreeWay, len(t))
	for k, c := range t {
		out[k] = c.summary()
	}
	return out
}

// ThreeWayKeys lists "all" first, then the sources in order.
func ThreeWayKeys(m map[string]ThreeWay) []string {
	var keys []string
	for k := range m {
		if k != "all" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return append([]string{"all"}, keys...)
}

package baseline

import (
	"math"
	"testing"
)

// The scores these rules gave when the bench figures in the README were
// measured (binary accuracy AFINN 0.710, equal to the npm package's, and
// VADER 0.752). Each sentence exercises a rule: the "but" shift, upper
// case, negation, "never so", "without doubt", "least", "kind of", "no",
// boosters one and three words back, and "!"/"?" emphasis.
func TestScoresPinned(t *testing.T) {
	vd, af := NewVADER(), NewAFINN()
	for _, tc := range []struct {
		text     string
		compound float64
		afinn    float64
	}{
		{"", 0, 0},
		{"Arrived at checkpoint 3.", 0, 0},
		{"The food was GREAT but the service was horrible!!", -0.5295082854572396, 0},
		{"Not bad at all.", 0.43102002306105164, 3},
		{"It was never so good.", 0.5777207395693768, 3},
		{"Without doubt the best pizza in town", 0.7438102268996682, 2},
		{"At least it works, the least helpful staff I met.", -0.325224313573055, 2},
		{"I kind of like it??", 0.4329141699474006, 4},
		{"No good, no way, no love or hope.", -0.6601659483531851, 5},
		{"This is extremely good :)", 0.7558720014511779, 3},
		{"I don't like this, it isn't great", -0.6601659483531851, -5},
		{"Really the pizza good, but slow.", 0.26903369453842796, 3},
		{"VERY BAD service, really really slow", -0.7398393215165651, -3},
		{"Is it good???? I hate waiting!!!!!", -0.6030619801005298, 0},
	} {
		t.Run(tc.text, func(t *testing.T) {
			// A tolerance, not ==: arm64 may fuse a multiply-add.
			if got := vd.Compound(tc.text); math.Abs(got-tc.compound) > 1e-12 {
				t.Errorf("VADER: got %v, want %v", got, tc.compound)
			}
			if got := af.Score(tc.text); got != tc.afinn {
				t.Errorf("AFINN: got %v, want %v", got, tc.afinn)
			}
		})
	}
}

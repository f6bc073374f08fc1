package demo

import "strings"

// Sample is one demo request.
type Sample struct {
	Peer string // peer name; empty means the relay's default
	Text string
	// Want is the label the default model gives; the end-to-end test checks it.
	Want string
}

// Samples are what `nexfield demo` sends when no --message is given: a
// positive, a negative and a neutral line, and a field report long enough to
// need many LoRa frames.
func Samples() []Sample {
	return []Sample{
		{Peer: "north", Text: "Rethink Con is great", Want: "positive"},
		{Peer: "south", Text: "The relay is broken again, this is terrible.", Want: "negative"},
		{Peer: "north", Text: "Arrived at checkpoint 3.", Want: "neutral"},
		{Peer: "south", Text: longReport(), Want: "positive"},
	}
}

func longReport() string {
	day := "Day %d: the crew reached the north mast before noon, swapped the solar controller, " +
		"cleaned the panels and checked every cable gland. The new antenna mount is solid and the " +
		"signal is excellent; the team did a wonderful job and the farm manager was delighted. "
	var b strings.Builder
	for i := 1; i <= 8; i++ {
		b.WriteString(strings.Replace(day, "%d", string(rune('0'+i)), 1))
	}
	return strings.TrimSpace(b.String())
}

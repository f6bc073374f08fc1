package inference_test

import (
	"context"
	"fmt"

	"github.com/nexfield/nexfield/inference"
)

func Example() {
	c, err := inference.New(nil) // the embedded default model
	if err != nil {
		panic(err)
	}
	defer c.Close()
	for _, text := range []string{"Arrived at checkpoint 3.", "Great job team, everything works!", "The relay is broken again, this is terrible."} {
		r, err := c.Classify(context.Background(), text)
		if err != nil {
			panic(err)
		}
		fmt.Println(r.Label)
	}
	// Output:
	// neutral
	// positive
	// negative
}

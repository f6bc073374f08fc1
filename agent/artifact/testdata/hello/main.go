// Command hello is a tiny program the artifact tests build for several
// architectures.
package main

import "fmt"

func main() { fmt.Println("hello from nexfield") }

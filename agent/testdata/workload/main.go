// Command workload is a tiny program the agent tests build and run as a
// workload: its first argument picks what it does.
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: workload echo|exit|serve|upper|env|crash|spin|family ...")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "echo": // print the rest and exit 0
		fmt.Println(strings.Join(os.Args[2:], " "))
	case "exit": // exit with the given code after a line on stderr
		code, _ := strconv.Atoi(os.Args[2])
		fmt.Fprintln(os.Stderr, "exiting with", code)
		os.Exit(code)
	case "serve": // run until SIGTERM, one line per 50 ms
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		fmt.Println("serving", os.Getenv("NEX_WORKLOAD_NATS_SERVERS") != "")
		t := time.NewTicker(50 * time.Millisecond)
		for {
			select {
			case <-sig:
				fmt.Println("terminated")
				return
			case <-t.C:
				fmt.Println("tick")
			}
		}
	case "upper": // function: stdin upper-cased to stdout
		b, _ := io.ReadAll(bufio.NewReader(os.Stdin))
		if string(b) == "fail" {
			fmt.Fprintln(os.Stderr, "asked to fail")
			os.Exit(4)
		}
		fmt.Print(strings.ToUpper(string(b)))
	case "env": // print the named variables
		for _, k := range os.Args[2:] {
			fmt.Printf("%s=%s\n", k, os.Getenv(k))
		}
	case "crash":
		os.Exit(1)
	case "spin": // burn CPU until SIGTERM
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		for n := 0; ; n++ {
			select {
			case <-sig:
				return
			default:
			}
			for i := 0; i < 1e6; i++ {
				n ^= i
			}
		}
	case "family": // start N children that serve, then serve; all in one group
		n, _ := strconv.Atoi(os.Args[2])
		for range n {
			c := exec.Command(os.Args[0], "serve")
			if err := c.Start(); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(3)
			}
		}
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		fmt.Println("family of", n+1)
		<-sig
	default:
		os.Exit(2)
	}
}

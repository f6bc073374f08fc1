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
	case "chatty": // COUNTER BYTES PAUSE: numbered lines of BYTES without end, PAUSE apart; the count so far in COUNTER
		chatty(os.Args[2:])
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

// chatty writes numbered lines of n bytes (newline included) to stdout as fast as its pause
// allows, and after every ten the number written so far into a counter
// file: a test watches the counter to see whether writing ever blocks.
func chatty(args []string) {
	f, err := os.Create(args[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	n, _ := strconv.Atoi(args[1])
	pause, _ := time.ParseDuration(args[2])
	for i := 1; ; i++ {
		l := fmt.Sprintf("line %d ", i)
		fmt.Println(l + strings.Repeat("x", max(n-1-len(l), 1)))
		if i%10 == 0 {
			f.WriteAt([]byte(fmt.Sprintf("%20d\n", i)), 0)
		}
		if pause > 0 {
			time.Sleep(pause)
		}
	}
}

// Command wl is a small program the workload tests run: its first argument
// picks what it does.
package main

import (
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
		fmt.Fprintln(os.Stderr, "usage: wl MODE ...")
		os.Exit(2)
	}
	args := os.Args[2:]
	switch os.Args[1] {
	case "echo": // print the arguments, exit 0
		fmt.Println(strings.Join(args, " "))
	case "exit": // a line on stdout and stderr, then exit with the code
		code, _ := strconv.Atoi(args[0])
		fmt.Println("about to exit")
		fmt.Fprintln(os.Stderr, "exiting with", code)
		os.Exit(code)
	case "env": // print NAME=value for each named variable
		for _, k := range args {
			fmt.Printf("%s=%s\n", k, os.Getenv(k))
		}
	case "serve": // tick until SIGTERM; args[0]: a file to write our pid to
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM)
		fmt.Println("ready")
		if len(args) > 0 {
			os.WriteFile(args[0], []byte(strconv.Itoa(os.Getpid())), 0o644)
		}
		t := time.NewTicker(20 * time.Millisecond)
		for n := 0; ; n++ {
			select {
			case <-sig:
				fmt.Println("terminated")
				return
			case <-t.C:
				fmt.Println("tick", n)
			}
		}
	case "stubborn": // ignore SIGTERM, start a grandchild, write both pids to args[0]
		signal.Ignore(syscall.SIGTERM)
		child := exec.Command(os.Args[0], "stubborn-child")
		child.Start()
		os.WriteFile(args[0], []byte(fmt.Sprintf("%d %d", os.Getpid(), child.Process.Pid)), 0o644)
		fmt.Println("ready")
		time.Sleep(time.Hour)
	case "stubborn-child":
		signal.Ignore(syscall.SIGTERM)
		time.Sleep(time.Hour)
	case "upper": // function: stdin upper-cased; "fail" exits 4
		b, _ := io.ReadAll(os.Stdin)
		if string(b) == "fail" {
			fmt.Fprintln(os.Stderr, "asked to fail")
			os.Exit(4)
		}
		fmt.Fprintln(os.Stderr, "got", len(b), "bytes")
		fmt.Print(strings.ToUpper(string(b)))
	case "chatty": // COUNTER BYTES PAUSE: numbered lines of BYTES without end, PAUSE apart; the count so far in COUNTER
		chatty(args)
	case "sleep": // sleep for a duration
		d, _ := time.ParseDuration(args[0])
		time.Sleep(d)
	default:
		fmt.Fprintln(os.Stderr, "unknown mode", os.Args[1])
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

package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	// SIGINT and SIGTERM alike cancel the running tasks (exit status 130):
	// a service manager's stop and a Ctrl-C mean the same. After the first
	// signal the default handling is back, so a second one kills.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	signalled := context.AfterFunc(ctx, func() {
		stop()
		go exitIfStuck(os.Stderr)
	})
	code := runContext(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	// stop cancels ctx too: without this, a command that just ended would
	// count as signalled, and an exit slower than stopGrace (a loaded
	// machine, the race detector's) would end as "interrupted", status 130.
	signalled()
	stop()
	os.Exit(code)
}

// stopGrace is how long after a signal wasmpool waits for what runs to
// stop before it exits anyway (exitIfStuck). A command that lets tasks
// finish on a signal (worker, serve-nats: --grace) adds its grace to it;
// negative: never.
var stopGrace atomic.Int64

func init() { stopGrace.Store(int64(time.Second)) }

// exitIfStuck ends the process with status 130 if the command has not
// returned within stopGrace of the signal. A signal cancels every task, and
// a guest normally stops at once; one that does not (a host function that
// ignores its context, say) must not keep the process alive: the signal
// asked it to stop. Whatever the tasks wrote is already on stdout (wasmpool
// writes each result as it comes, unbuffered), so nothing is lost.
func exitIfStuck(stderr io.Writer) {
	if stopGrace.Load() < 0 {
		return // this process does not end on a signal (worker --child)
	}
	time.Sleep(time.Duration(stopGrace.Load()))
	fmt.Fprintf(stderr, "\nwasmpool: interrupted: what was running did not stop within %v of the signal; exiting without it\n",
		time.Duration(stopGrace.Load()))
	os.Exit(exitCancelled)
}

// run is the whole CLI as a function: tests drive it in-process.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return runContext(context.Background(), args, stdin, stdout, stderr)
}

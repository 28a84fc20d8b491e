//go:build wasip1

// Command hostile is a wasmpool guest module of misbehaving tasks, for testing
// that the host contains them: panics, deadlocks, runaway memory, output and
// stderr floods, infinite loops and recursion, plus a few probes of what the
// sandbox lets a guest see (environment, files) and some well-behaved tasks.
package main

import (
	"errors"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/wasmpool/wasmpool/guest"
)

func main() {}

// panic panics. The Go runtime prints "panic: boom" and a goroutine trace
// to stderr; in a reactor it then aborts with an unreachable trap (a command
// would exit with status 2).
//
//go:wasmexport panic
func panicTask() int32 {
	return guest.Serve(func([]byte) ([]byte, error) { panic("boom") })
}

// deadlock blocks on a channel no one will ever send on. With no other
// goroutine to run, the runtime reports "fatal error: all goroutines are
// asleep - deadlock!" on stderr and, like panic, aborts with an unreachable
// trap.
//
//go:wasmexport deadlock
func deadlock() int32 {
	return guest.Serve(func([]byte) ([]byte, error) {
		<-make(chan int)
		return nil, nil
	})
}

// hoard keeps every allocation of membomb reachable.
var hoard [][]byte

// membomb allocates 1 MiB at a time, forever, until the host's memory cap
// stops it.
//
//go:wasmexport membomb
func membomb() int32 {
	return guest.Serve(func([]byte) ([]byte, error) {
		for {
			b := make([]byte, 1<<20)
			for i := 0; i < len(b); i += 4096 {
				b[i] = byte(i)
			}
			hoard = append(hoard, b)
		}
	})
}

// flood writes 64 KiB chunks through the ABI until the host refuses them,
// then fails.
//
//go:wasmexport flood
func flood() int32 {
	chunk := []byte(strings.Repeat("flood!\n", 64<<10/7+1))[:64<<10]
	for {
		if err := guest.Write(chunk); err != nil {
			return 1
		}
	}
}

// stderrflood writes 64 KiB chunks to stderr forever, ignoring errors; only
// the host can stop it.
//
//go:wasmexport stderrflood
func stderrflood() int32 {
	chunk := []byte(strings.Repeat("stderr!\n", 64<<10/8))
	for {
		_, _ = os.Stderr.Write(chunk)
	}
}

// spins is a package variable so that the compiler cannot prove the spin
// loop is without effect.
var spins int64

// spin loops forever on the CPU; it makes no calls and never yields.
//
//go:wasmexport spin
func spin() int32 {
	for {
		spins++
		if spins == -1 {
			break
		}
	}
	return 0
}

// sleep sleeps for the duration in its input (for example "100ms"), then
// outputs "slept".
//
//go:wasmexport sleep
func sleep() int32 {
	return guest.Serve(func(in []byte) ([]byte, error) {
		d, err := time.ParseDuration(strings.TrimSpace(string(in)))
		if err != nil {
			return nil, err
		}
		time.Sleep(d)
		return []byte("slept"), nil
	})
}

// fail fails in the orderly way, with a message.
//
//go:wasmexport fail
func fail() int32 {
	return guest.Serve(func([]byte) ([]byte, error) { return nil, errors.New("hostile failure") })
}

// recurse recurses without bound, each frame holding a 1 KiB array, until
// the Go runtime gives up on growing the stack or the host's memory cap
// stops it.
//
//go:wasmexport recurse
func recurse() int32 {
	return guest.Serve(func(in []byte) ([]byte, error) {
		return []byte{deeper(len(in))}, nil
	})
}

//go:noinline
func deeper(n int) byte {
	var frame [1024]byte
	frame[n%len(frame)] = byte(n)
	return deeper(n+1) + frame[(n*7)%len(frame)]
}

// echo outputs its input unchanged.
//
//go:wasmexport echo
func echo() int32 {
	return guest.Serve(func(in []byte) ([]byte, error) { return in, nil })
}

// printenv outputs the environment the guest sees, sorted, one per line.
//
//go:wasmexport printenv
func printenv() int32 {
	return guest.Serve(func([]byte) ([]byte, error) {
		env := os.Environ()
		slices.Sort(env)
		return []byte(strings.Join(env, "\n")), nil
	})
}

// readfile outputs the contents of the file named by its input.
//
//go:wasmexport readfile
func readfile() int32 {
	return guest.Serve(func(in []byte) ([]byte, error) { return os.ReadFile(string(in)) })
}

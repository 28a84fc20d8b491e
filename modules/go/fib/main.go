//go:build wasip1

// Command fib is a wasmpool guest module whose "fib" task computes the n-th
// Fibonacci number by naive recursion: it is a CPU benchmark, not a good way
// to compute Fibonacci numbers. Past n = 40 or so it takes a very long time.
package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/wasmpool/wasmpool/guest"
)

func main() {}

func fib(n uint64) uint64 {
	if n < 2 {
		return n
	}
	return fib(n-1) + fib(n-2)
}

//go:wasmexport fib
func run() int32 {
	return guest.Serve(func(in []byte) ([]byte, error) {
		s := strings.TrimSpace(string(in))
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil || n > 92 {
			return nil, fmt.Errorf("fib wants a whole number from 0 to 92, got %q", s)
		}
		return strconv.AppendUint(nil, fib(n), 10), nil
	})
}

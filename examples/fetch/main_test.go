package main

import (
	"os"
	"testing"

	"github.com/wasmpool/wasmpool/internal/testmod"
)

func TestMain(m *testing.M) { os.Exit(testmod.RunExample(m, "caps")) }

// The README's I/O-bound example compiles (it is this package), fetches
// every page from its server through the guests, and prints what its
// comments say.
func Example() {
	main()
	// Output:
	// 200 page /0
	// 200 pages
}

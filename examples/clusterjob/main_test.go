package main

import (
	"os"
	"testing"

	"github.com/wasmpool/wasmpool/internal/testmod"
)

func TestMain(m *testing.M) { os.Exit(testmod.RunExample(m, "upper")) }

// The README's job example compiles (it is this package) and prints what
// its comments say.
func Example() {
	main()
	// Output:
	// ALPHA <nil>
	// BETA <nil>
	// GAMMA <nil>
	// DELTA <nil>
	// resumed: 2
	// 4 0 0 <nil>
}

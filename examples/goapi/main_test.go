package main

import (
	"os"
	"testing"

	"github.com/wasmpool/wasmpool/internal/testmod"
)

func TestMain(m *testing.M) { os.Exit(testmod.RunExample(m, "upper")) }

// The README's Go API example compiles (it is this package) and prints
// what its comments say.
func Example() {
	main()
	// Output:
	// HI <nil>
	// ONE <nil>
	// TWO <nil>
	// THREE <nil>
	// 3 3 0 <nil>
	// true module "upper.wasm": has no exported function "nosuch" (exports: upper () -> i32)
}

package main

import (
	"os"
	"testing"

	"github.com/wasmpool/wasmpool/internal/testmod"
)

func TestMain(m *testing.M) { os.Exit(testmod.RunExample(m, "weather")) }

// The README's plugin-host example compiles (it is this package) and prints
// what its comments say.
func Example() {
	main()
	// Output:
	// sunny in Lisbon <nil>
	// module "weather.wasm": task failed: capability "http" is not granted to this task (granted: config)
}

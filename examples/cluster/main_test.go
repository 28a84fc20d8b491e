package main

import (
	"os"
	"testing"

	"github.com/wasmpool/wasmpool/internal/testmod"
)

func TestMain(m *testing.M) { os.Exit(testmod.RunExample(m, "upper")) }

// The README's cluster example compiles (it is this package) and prints
// what its comments say.
func Example() {
	main()
	// Output:
	// OVER NATS worker-1 <nil>
	// worker-1 2 map[zone:eu-west-1] 0
	// IN PROCESS <nil>
}

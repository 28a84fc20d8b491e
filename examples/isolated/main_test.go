package main

import (
	"os"
	"testing"

	"github.com/wasmpool/wasmpool/internal/testmod"
	"github.com/wasmpool/wasmpool/pool"
)

func TestMain(m *testing.M) {
	pool.ServeChild() // this test binary is the program, worker processes included
	os.Exit(testmod.RunExample(m, "hostile"))
}

// The README's subprocess-isolation example compiles (it is this package)
// and prints what its comments say.
func Example() {
	main()
	// Output:
	// true
	// still here <nil>
}

// Command coldstart is the anchor of the CLI cold-start benchmark: the least
// a command line can do to run one task of a module with wazero. It reads the
// module, compiles it through wazero's on-disk compilation cache,
// instantiates it, calls one task export and prints its output:
//
//	coldstart -cache DIR -func NAME -input FILE MODULE
//
// The harness times it against `wasmpool run` of the same module, function
// and input, both with a warm cache.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/tetratelabs/wazero"

	"github.com/wasmpool/wasmpool/internal/benchcmp/bare"
)

func main() {
	cache := flag.String("cache", "", "wazero compilation cache directory")
	fn := flag.String("func", "", "task export to call")
	input := flag.String("input", "", "file holding the task's input")
	flag.Parse()
	if flag.NArg() != 1 || *fn == "" || *cache == "" {
		fmt.Fprintln(os.Stderr, "usage: coldstart -cache DIR -func NAME [-input FILE] MODULE")
		os.Exit(2)
	}
	if err := run(flag.Arg(0), *cache, *fn, *input); err != nil {
		fmt.Fprintln(os.Stderr, "coldstart:", err)
		os.Exit(1)
	}
}

func run(module, cache, fn, inputFile string) error {
	ctx := context.Background()
	wasm, err := os.ReadFile(module)
	if err != nil {
		return err
	}
	var in []byte
	if inputFile != "" {
		if in, err = os.ReadFile(inputFile); err != nil {
			return err
		}
	}
	cc, err := wazero.NewCompilationCacheWithDir(cache)
	if err != nil {
		return err
	}
	defer cc.Close(ctx)
	rt, err := bare.New(ctx, wasm, cc)
	if err != nil {
		return err
	}
	defer rt.Close(ctx)
	out, err := rt.Run(ctx, fn, in)
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(out)
	return err
}

// Command buildmods builds every Go guest module under modules/go into a
// directory, as NAME.wasm, reusing the testmod build cache:
//
//	go run ./internal/testmod/cmd/buildmods -o build/modules
//
// It prints one line per module and exits 1 if any failed to build.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/wasmpool/wasmpool/internal/testmod"
)

func main() {
	out := flag.String("o", "build/modules", "directory to write NAME.wasm files into")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: buildmods [-o DIR] [NAME...]\n\nBuilds the Go guest modules under modules/go (all of them, or the NAMEs given).\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()

	names := flag.Args()
	if len(names) == 0 {
		var err error
		if names, err = testmod.Names(); err != nil {
			fmt.Fprintln(os.Stderr, "buildmods:", err)
			os.Exit(1)
		}
	}
	start := time.Now()
	failed := 0
	for _, r := range testmod.InstallAll(names, *out) {
		if r.Err != nil {
			failed++
			fmt.Fprintf(os.Stderr, "buildmods: %s: %v\n", r.Name, r.Err)
			continue
		}
		verb := "built"
		if r.Cached {
			verb = "cached"
		}
		fmt.Printf("%s %s (%.1f MB)\n", verb, filepath.Base(r.Path), float64(r.Size)/1e6)
	}
	if failed > 0 {
		fmt.Fprintf(os.Stderr, "buildmods: %d of %d modules failed to build\n", failed, len(names))
		os.Exit(1)
	}
	fmt.Printf("%d modules in %s (%.1fs)\n", len(names), *out, time.Since(start).Seconds())
}

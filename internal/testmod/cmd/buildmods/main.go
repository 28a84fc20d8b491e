// Command buildmods builds every Go guest module under modules/go into a
// directory, as NAME.wasm, reusing the testmod build cache:
//
//	go run ./internal/testmod/cmd/buildmods -o build/modules [-warm-test-cache]
//
// It prints one line per module and exits 1 if any failed to build.
//
// With -warm-test-cache it also compiles every module, in each engine
// configuration the tests use, into the compiled-code cache tests share
// (testmod.CompileCache). wazero's compiler runs 5 to 10 times slower in a
// race-instrumented test binary, but the code it produces does not depend on
// how the host was built: compiled here, by a plain build and in parallel,
// each variant costs the race-enabled suite a cache hit instead of seconds.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/internal/testmod"
)

func main() {
	out := flag.String("o", "build/modules", "directory to write NAME.wasm files into")
	warm := flag.Bool("warm-test-cache", false, "also compile each module, as the tests do, into the cache tests share")
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
	if *warm {
		start = time.Now()
		if err := warmTestCache(names, *out); err != nil {
			fmt.Fprintln(os.Stderr, "buildmods:", err)
			os.Exit(1)
		}
		fmt.Printf("compiled into %s (%.1fs)\n", testmod.CompileCache(), time.Since(start).Seconds())
	}
}

// warmTestCache compiles every module (the Go guests built here and the
// committed fixtures under testdata/) with each engine configuration whose
// compiled code differs: the default, pre-initialisation (globals exported),
// a worker process's (no interrupt checks), and the metered code a task
// with a fuel budget runs, which an engine compiles on first use.
func warmTestCache(names []string, dir string) error {
	ctx := context.Background()
	var engines []*engine.Engine
	for _, cfg := range []engine.Config{{}, {Preinitialize: true}, {NoInterrupt: true}} {
		cfg.CacheDir = testmod.CompileCache()
		e, err := engine.New(ctx, cfg)
		if err != nil {
			return err
		}
		defer e.Close(ctx)
		engines = append(engines, e)
	}
	paths := make([]string, 0, len(names))
	for _, name := range names {
		paths = append(paths, filepath.Join(dir, name+".wasm"))
	}
	root, err := testmod.Root()
	if err != nil {
		return err
	}
	fixtures, err := filepath.Glob(filepath.Join(root, "testdata", "*", "*.wasm"))
	if err != nil {
		return err
	}
	type job struct {
		e       *engine.Engine
		path    string
		fixture bool
	}
	jobs := make(chan job)
	errs := make(chan error, (len(paths)+len(fixtures))*len(engines))
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for j := range jobs {
				m, err := j.e.CompileFile(ctx, j.path)
				if err != nil {
					if !j.fixture {
						errs <- err
					}
					continue // a fixture may be bad on purpose
				}
				warmMetered(ctx, j.e, m)
			}
		})
	}
	for _, p := range paths {
		for _, e := range engines {
			jobs <- job{e, p, false}
		}
	}
	for _, p := range fixtures {
		for _, e := range engines {
			jobs <- job{e, p, true}
		}
	}
	close(jobs)
	wg.Wait()
	close(errs)
	return <-errs // nil when the channel is empty
}

// warmMetered has the engine compile m's metered code: a task with a fuel
// budget of one instruction compiles it, then stops at once. What the task
// itself does (it runs out of fuel, or fails to instantiate) does not matter.
func warmMetered(ctx context.Context, e *engine.Engine, m *engine.Module) {
	t := engine.Task{Module: m, Fuel: 1, Timeout: 10 * time.Second}
	if !m.IsCommand() {
		for _, x := range m.Exports() {
			if x.Name != "_initialize" {
				t.Func = x.Name
				break
			}
		}
		if t.Func == "" {
			return
		}
	}
	_, _ = e.Run(ctx, t)
}

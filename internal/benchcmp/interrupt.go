package benchcmp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/internal/benchcmp/bare"
	"github.com/wasmpool/wasmpool/internal/testmod"
)

// Issue 12's measures: what stopping a guest costs, in process.
//
// Each CPU-bound kernel runs on one warm instance four ways, in the same
// run, interleaved round by round (a load passing over the machine then
// weighs on all four alike), and each figure is the median over the rounds
// of its ratio to the floor of the same round:
//
//   - the floor: bare wazero, no interruption at all;
//   - wazero's close-on-context-done with a timeout on every call (what
//     wasmpool used before: it leaves native code at every loop back-edge);
//   - wasmpool with a timeout on every call (the engine's instrumentation);
//   - wasmpool with a fuel budget and a timeout on every call.

// KernelCost is one kernel's figures.
type KernelCost struct {
	Kernel string        `json:"kernel"`
	Floor  time.Duration `json:"floor_ns"` // median call on bare wazero
	// Ratios to the floor, by variant: "close-on-context-done",
	// "wasmpool timeout", "wasmpool fuel".
	Ratios map[string]float64 `json:"ratios"`
	Rounds int                `json:"rounds"`
}

// The variants, as the table names them.
const (
	varCloseOnDone = "close-on-context-done"
	varTimeout     = "wasmpool timeout"
	varFuel        = "wasmpool fuel"
)

// StopLatency is how late a 1 ms timeout stops a guest when every P runs a
// guest that never ends on its own: from the deadline to the task's return.
type StopLatency struct {
	Guests  int           `json:"guests"`
	Samples int           `json:"samples"`
	P50     time.Duration `json:"p50_ns"`
	P99     time.Duration `json:"p99_ns"`
	Max     time.Duration `json:"max_ns"`
}

// CLIRun is `wasmpool run` of a CPU-bound command against `wazero run` of
// it, each a new process, alternating.
type CLIRun struct {
	Command  string        `json:"command"`
	Runs     int           `json:"runs"`
	Wasmpool time.Duration `json:"wasmpool_median_ns"`
	Wazero   time.Duration `json:"wazero_median_ns"`
}

// kernel is one CPU-bound task.
type kernel struct {
	label, module, fn string // module: a Go guest's name, or a path under testdata
	input             []byte
}

func kernels(c Config) []kernel {
	fib := []byte(strconv.Itoa(c.FibN))
	sha := shaInput(c.SHASize)
	return []kernel{
		{fmt.Sprintf("Go fib(%d)", c.FibN), "fib", "fib", fib},
		{"Go sha256 " + sizeLabel(c.SHASize), "sha256", "sha256", sha},
		{"Go mixed", "mixed", "mixed", []byte("3")},
		{fmt.Sprintf("C fib(%d)", c.FibN), "c/kernels.wasm", "fib", fib},
		{"C sha256 " + sizeLabel(c.SHASize), "c/kernels.wasm", "sha256", sha},
		{"C mixed", "c/kernels.wasm", "mixed", []byte("3")},
	}
}

func kernelPath(module string) (string, error) {
	if filepath.Ext(module) == ".wasm" {
		root, err := testmod.Root()
		return filepath.Join(root, "testdata", module), err
	}
	return testmod.Build(module)
}

// measureKernels measures every kernel's four variants.
func measureKernels(ctx context.Context, c Config, e *engine.Engine, prog *progress) ([]KernelCost, error) {
	cache, err := wazero.NewCompilationCacheWithDir(filepath.Join(testmod.CacheDir(), "bench-bare-compiled"))
	if err != nil {
		return nil, err
	}
	defer cache.Close(context.WithoutCancel(ctx))
	rounds := 15
	if c.Budget < time.Second {
		rounds = 7
	}
	var out []KernelCost
	for i, k := range kernels(c) {
		prog.say(fmt.Sprintf("interruption [%d/%d]: %s", i+1, len(kernels(c)), k.label))
		kc, err := measureKernel(ctx, c, e, cache, k, rounds)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k.label, err)
		}
		out = append(out, kc)
	}
	return out, nil
}

func measureKernel(ctx context.Context, c Config, e *engine.Engine, cache wazero.CompilationCache, k kernel, rounds int) (KernelCost, error) {
	path, err := kernelPath(k.module)
	if err != nil {
		return KernelCost{}, err
	}
	wasm, err := os.ReadFile(path)
	if err != nil {
		return KernelCost{}, err
	}
	// The instances are built in sets: how fast one instance runs varies by
	// several percent with where its memory landed (the same variant, the
	// same process: 1.05x to 1.14x the floor from one set of instances to
	// the next), a bias the median over rounds of one set keeps. So the
	// rounds are spread over instanceSets fresh sets, each warmed up
	// untimed first (a young Go guest collects garbage more often, and a
	// young bare wazero instance copies its memory at each growth).
	type call func() ([]byte, error)
	var opens [4]func() (call, func(), error) // floor, close-on-done, timeout, fuel
	for i, closeOnDone := range []bool{false, true} {
		r, err := bare.NewWithConfig(ctx, wasm, cache, closeOnDone)
		if err != nil {
			return KernelCost{}, err
		}
		defer r.Close(context.WithoutCancel(ctx))
		opens[i] = func() (call, func(), error) {
			mod, err := r.Instantiate(ctx)
			if err != nil {
				return nil, nil, err
			}
			done := func() { _ = mod.Close(context.WithoutCancel(ctx)) }
			if closeOnDone {
				return func() ([]byte, error) {
					tctx, cancel := context.WithTimeout(ctx, c.Timeout)
					defer cancel()
					return bare.Call(tctx, mod, k.fn, k.input)
				}, done, nil
			}
			return func() ([]byte, error) { return bare.Call(ctx, mod, k.fn, k.input) }, done, nil
		}
	}
	m, err := e.CompileNamed(ctx, filepath.Base(path), wasm)
	if err != nil {
		return KernelCost{}, err
	}
	rt, err := e.NewRuntime(ctx)
	if err != nil {
		return KernelCost{}, err
	}
	defer rt.Close(context.WithoutCancel(ctx))
	for i, fuel := range []uint64{0, 1 << 60} {
		task := engine.Task{Module: m, Func: k.fn, Input: k.input, Timeout: c.Timeout, Fuel: fuel}
		opens[2+i] = func() (call, func(), error) {
			inst, err := rt.Instantiate(ctx, task)
			if err != nil {
				return nil, nil, err
			}
			return func() ([]byte, error) {
				res, err := inst.Call(ctx, task)
				return res.Output, err
			}, func() { _ = inst.Close(context.WithoutCancel(ctx)) }, nil
		}
	}

	const instanceSets = 3
	var want []byte
	reps := 0
	ratios := make([][]float64, len(opens))
	floors := make([]time.Duration, 0, rounds)
	for set := range instanceSets {
		// One set's instances, closed before the next set's are built.
		err := func() error {
			var calls [4]call
			for i, open := range opens {
				fn, done, err := open()
				if err != nil {
					return fmt.Errorf("variant %d: %w", i, err)
				}
				defer done()
				calls[i] = fn
			}
			// Every variant must compute the same; the floor says what.
			if want == nil {
				var err error
				if want, err = calls[0](); err != nil {
					return err
				}
			}
			for i, call := range calls {
				got, err := call()
				if err != nil {
					return fmt.Errorf("variant %d: %w", i, err)
				}
				if !bytes.Equal(got, want) {
					return fmt.Errorf("variant %d computed %q, the floor %q", i, got, want)
				}
			}
			if reps == 0 {
				// Calls per timing: about a round's share of the budget on the
				// floor.
				start := time.Now()
				if _, err := calls[0](); err != nil {
					return err
				}
				one := max(time.Since(start), time.Microsecond)
				reps = max(int(c.Budget/time.Duration(rounds)/one), 1)
			}
			for _, call := range calls {
				for range reps {
					if _, err := call(); err != nil {
						return err
					}
				}
			}
			for round := set * rounds / instanceSets; round < (set+1)*rounds/instanceSets; round++ {
				if err := ctx.Err(); err != nil {
					return err
				}
				var took [4]time.Duration
				for n := range calls {
					i := (n + round) % len(calls)
					start := time.Now()
					for range reps {
						if _, err := calls[i](); err != nil {
							return err
						}
					}
					took[i] = time.Since(start) / time.Duration(reps)
				}
				floors = append(floors, took[0])
				for i := 1; i < len(calls); i++ {
					ratios[i] = append(ratios[i], float64(took[i])/float64(took[0]))
				}
			}
			return nil
		}()
		if err != nil {
			return KernelCost{}, err
		}
	}
	kc := KernelCost{Kernel: k.label, Floor: median(floors), Rounds: rounds, Ratios: map[string]float64{}}
	for i, name := range []string{"", varCloseOnDone, varTimeout, varFuel} {
		if i > 0 {
			kc.Ratios[name] = medianFloat(ratios[i])
		}
	}
	return kc, nil
}

func medianFloat(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

// measureStopLatency runs, for the budget, as many guests as there are Ps
// plus one, each a task that never ends on its own with a 1 ms timeout,
// again and again: half a loop without calls, half a recursion without
// loops. Each sample is how long after its deadline a task returned.
func measureStopLatency(ctx context.Context, c Config, e *engine.Engine) (*StopLatency, error) {
	root, err := testmod.Root()
	if err != nil {
		return nil, err
	}
	spin, err := e.CompileFile(ctx, filepath.Join(root, "testdata", "wat", "spin.wasm"))
	if err != nil {
		return nil, err
	}
	fibrec, err := e.CompileFile(ctx, filepath.Join(root, "testdata", "wat", "fibrec.wasm"))
	if err != nil {
		return nil, err
	}
	tasks := []engine.Task{{Module: spin, Func: "spin"}, {Module: fibrec, Func: "fib", Params: []uint64{60}}}
	const timeout = time.Millisecond
	guests := runtime.GOMAXPROCS(0) + 1
	var (
		mu       sync.Mutex
		samples  []time.Duration
		firstErr error
	)
	end := time.Now().Add(max(c.Budget, 500*time.Millisecond))
	var wg sync.WaitGroup
	for g := range guests {
		task := tasks[g%2]
		task.Timeout = timeout
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for time.Now().Before(end) && ctx.Err() == nil {
				start := time.Now()
				_, err := e.Run(ctx, task)
				late := time.Since(start) - timeout
				if err == nil || !isTimeout(err) {
					mu.Lock()
					firstErr = fmt.Errorf("a busy guest ended with %v, not its timeout", err)
					mu.Unlock()
					return
				}
				mine = append(mine, max(late, 0))
			}
			mu.Lock()
			samples = append(samples, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	slices.Sort(samples)
	return &StopLatency{Guests: guests, Samples: len(samples), P50: percentile(samples, 50), P99: percentile(samples, 99),
		Max: samples[len(samples)-1]}, nil
}

func isTimeout(err error) bool { return errors.Is(err, engine.ErrTimeout) }

// measureCLIRun times `wasmpool run` and `wazero run` of the n-body
// command, alternating, after one untimed run of each that fills its cache.
func measureCLIRun(ctx context.Context, c Config, prog *progress) (*CLIRun, error) {
	dir, err := os.MkdirTemp("", "wasmpool-bench-cli-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	cli := c.WasmpoolBin
	if cli == "" {
		cli = filepath.Join(dir, "wasmpool")
		if err := goBuild(ctx, cli, "./cmd/wasmpool"); err != nil {
			return nil, err
		}
	}
	wz := filepath.Join(dir, "wazero")
	if err := goBuild(ctx, wz, "github.com/tetratelabs/wazero/cmd/wazero"); err != nil {
		return nil, err
	}
	root, err := testmod.Root()
	if err != nil {
		return nil, err
	}
	module := filepath.Join(root, "testdata", "c", "nbody.wasm")
	steps := "10000000"
	if c.Budget < time.Second {
		steps = "2000000"
	}
	cmds := [2][]string{
		{cli, "run", module, "--cache-dir", filepath.Join(dir, "wasmpool-cache"), "--", steps},
		{wz, "run", "-cachedir", filepath.Join(dir, "wazero-cache"), module, steps},
	}
	var want []byte
	for _, args := range cmds {
		out, err := runCommand(ctx, args)
		if err != nil {
			return nil, err
		}
		if want == nil {
			want = out
		} else if !bytes.Equal(out, want) {
			return nil, fmt.Errorf("wazero printed %q, wasmpool %q", out, want)
		}
	}
	runs := max(c.ColdRuns/3, 3)
	times := [2][]time.Duration{}
	for i := range runs {
		prog.say(fmt.Sprintf("wasmpool run vs wazero run: %d/%d", i+1, runs))
		for k, args := range cmds {
			d, err := timeCommand(ctx, args, want)
			if err != nil {
				return nil, err
			}
			times[k] = append(times[k], d)
		}
	}
	return &CLIRun{Command: "nbody " + steps, Runs: runs, Wasmpool: median(times[0]), Wazero: median(times[1])}, nil
}

// runCommand runs args and returns its stdout, trimmed.
func runCommand(ctx context.Context, args []string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s: %v: %s", filepath.Base(args[0]), err, bytes.TrimSpace(errb.Bytes()))
	}
	return bytes.TrimSpace(out.Bytes()), nil
}

package benchcmp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	"github.com/tetratelabs/wazero"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/internal/testmod"
	"github.com/wasmpool/wasmpool/pool"
)

// Config says what to measure and how long. The zero value is not useful:
// start from Default or Quick.
type Config struct {
	Budget     time.Duration // per measure (a latency or a throughput figure)
	MinSamples int           // latency samples per cell, even past Budget
	Workers    []int         // worker counts to measure; the scaling target wants 1 and 2
	FibN       int           // n of the CPU-bound fib task
	SHASize    int           // bytes hashed by the sha256 task
	Timeout    time.Duration // the per-task timeout enforced in the "timeout" workloads (never reached)

	Python      string // python3 to run; "" looks it up on PATH, "none" skips Python
	WasmpoolBin string // the CLI for the cold-start measure; "" builds it
	ColdRuns    int    // timed runs of each command in the cold-start measure; 0 skips it
	RSSTasks    [2]int // isolated tasks before the two RSS readings; zeros skip it
	CacheDir    string // the engine's compiled-code cache; "" is testmod's shared one
	// SkipInterruption leaves out issue 12's measures (interrupt.go);
	// OnlyInterruption measures nothing else.
	SkipInterruption, OnlyInterruption bool
	// SkipFetch leaves out issue 15's I/O-bound measure (fetch.go);
	// OnlyFetch measures nothing else.
	SkipFetch, OnlyFetch bool
	// SkipCluster leaves out issue 16's cluster rows (cluster.go);
	// OnlyCluster measures nothing else.
	SkipCluster, OnlyCluster bool

	Out      io.Writer // the table
	Progress io.Writer // the progress line; nil for none
}

// Default is the full run: a few minutes on 2 cores.
func Default() Config {
	return Config{
		Budget: time.Second, MinSamples: 5, Workers: []int{1, 2}, FibN: 27, SHASize: 64 << 10,
		Timeout: 10 * time.Second, ColdRuns: 15, RSSTasks: [2]int{1000, 100000}, Out: os.Stdout, Progress: os.Stderr,
	}
}

// Quick is the same run with small budgets: about a minute.
func Quick() Config {
	c := Default()
	c.Budget = 150 * time.Millisecond
	c.MinSamples = 3
	c.ColdRuns = 5
	c.RSSTasks = [2]int{1000, 20000}
	return c
}

// The executors, as cells name them.
const (
	sysNative    = "go pool"
	sysThreads   = "wasmpool threads"
	sysProcesses = "wasmpool processes"
	sysPreinit   = "wasmpool processes, preinit" // engine.Config.Preinitialize
	// Threads inside worker processes (pool.Subprocess): a round trip over a
	// pipe per batch of tasks; beside the no-op in process, the cost of the
	// isolation per task at throughput.
	sysSubprocess = "wasmpool threads, worker processes"
	sysBare       = "wazero bare" // a fresh instance per task
	sysBareWarm   = "wazero warm" // one instance, called again and again
	sysPyThread   = "python threads"
	sysPyProcess  = "python processes"
)

// pythonTwin is the Python executor each executor is compared with.
var pythonTwin = map[string]string{
	sysNative: sysPyThread, sysThreads: sysPyThread,
	sysProcesses: sysPyProcess, sysPreinit: sysPyProcess, sysSubprocess: sysPyProcess, sysBare: sysPyProcess, sysBareWarm: sysPyThread,
}

// workload is one task, run the same way by every executor it lists.
type workload struct {
	key     string // stable name, in the JSON
	label   string // in the table
	module  string // "noop" (testdata/wat) or a Go guest under modules/go
	fn      string
	input   []byte
	native  func([]byte) ([]byte, error) // the same work in plain Go
	timeout bool                         // enforce Config.Timeout on every task
	systems []string
	floor   string // the workload whose go pool row is the floor; "" is this one
	py      string // bench.py's task; "" when Python has no counterpart
}

func workloads(c Config) []workload {
	fibIn := []byte(strconv.Itoa(c.FibN))
	sha := shaInput(c.SHASize)
	pools := []string{sysNative, sysThreads, sysSubprocess, sysPyThread}
	withTimeout := []string{sysNative, sysThreads, sysSubprocess, sysPyThread}
	cpu := []string{sysNative, sysThreads, sysProcesses, sysSubprocess, sysBareWarm, sysPyThread, sysPyProcess}
	isolated := []string{sysProcesses, sysBare, sysPyProcess}
	fibLabel := fmt.Sprintf("fib(%d)", c.FibN)
	shaLabel := fmt.Sprintf("sha256 %s", sizeLabel(c.SHASize))
	return []workload{
		{key: "noop", label: "no-op", module: "noop", fn: "noop", native: nativeNoop, systems: pools, py: "noop"},
		{key: "noop+timeout", label: "no-op, timeout", module: "noop", fn: "noop", native: nativeNoop, timeout: true, systems: withTimeout, py: "noop"},
		{key: "noop-isolated", label: "no-op, isolated", module: "noop", fn: "noop", native: nativeNoop, systems: isolated, floor: "noop", py: "noop"},
		{key: "go-isolated", label: "Go guest fib(1), isolated", module: "fib", fn: "fib", input: []byte("1"), native: nativeFib,
			systems: []string{sysProcesses, sysPreinit, sysBare}, floor: "noop"},
		{key: "fib", label: fibLabel, module: "fib", fn: "fib", input: fibIn, native: nativeFib, systems: cpu, py: "fib"},
		{key: "fib+timeout", label: fibLabel + ", timeout", module: "fib", fn: "fib", input: fibIn, native: nativeFib, timeout: true, systems: cpu, py: "fib"},
		{key: "sha256", label: shaLabel, module: "sha256", fn: "sha256", input: sha, native: nativeSHA256, systems: cpu, py: "sha256"},
	}
}

// shaInput is the sha256 task's input; bench.py builds the same bytes.
func shaInput(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}

func sizeLabel(n int) string {
	if n >= 1<<10 && n%(1<<10) == 0 {
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}

// Run measures everything the config asks for, prints the table to c.Out
// and returns the report (which WriteJSON saves).
func Run(ctx context.Context, c Config) (*Report, error) {
	if len(c.Workers) == 0 || c.Budget <= 0 {
		return nil, errors.New("benchcmp: the config needs Workers and a Budget")
	}
	prog := newProgress(c.Progress)
	defer prog.done()
	rep := &Report{Meta: newMeta(c)}
	prog.say("building the Go guests (fib, sha256)")
	mods, err := modulePaths()
	if err != nil {
		return nil, err
	}
	cacheDir := c.CacheDir
	if cacheDir == "" {
		cacheDir = testmod.CompileCache()
	}
	e, err := engine.New(ctx, engine.Config{CacheDir: cacheDir})
	if err != nil {
		return nil, err
	}
	defer e.Close(context.WithoutCancel(ctx))
	pre, err := engine.New(ctx, engine.Config{CacheDir: cacheDir, Preinitialize: true})
	if err != nil {
		return nil, err
	}
	defer pre.Close(context.WithoutCancel(ctx))

	wls := workloads(c)
	everything := !c.OnlyInterruption && !c.OnlyFetch && !c.OnlyCluster
	if everything {
		if err := runGo(ctx, c, engines{e, pre}, mods, wls, rep, prog); err != nil {
			return nil, err
		}
		runPython(ctx, c, wls, rep, prog)
	}
	if !c.SkipInterruption && !c.OnlyFetch && !c.OnlyCluster {
		if rep.Interruption, err = measureKernels(ctx, c, e, prog); err != nil {
			return nil, err
		}
		prog.say("stop latency: a 1 ms timeout with every P busy")
		if rep.StopLatency, err = measureStopLatency(ctx, c, e); err != nil {
			return nil, err
		}
		if c.ColdRuns > 0 {
			prog.say("wasmpool run vs wazero run")
			if rep.CLIRun, err = measureCLIRun(ctx, c, prog); err != nil {
				rep.Notes = append(rep.Notes, "wasmpool run vs wazero run not measured: "+err.Error())
			}
		}
	}
	if !c.SkipFetch && !c.OnlyInterruption && !c.OnlyCluster {
		prog.say("fetch: the local HTTP server")
		if rep.Fetch, err = measureFetch(ctx, c, prog); err != nil {
			return nil, fmt.Errorf("fetch: %w", err)
		}
		if rep.Meta.Python == "" {
			rep.Meta.Python = rep.Fetch.Python
		}
	}
	if !c.SkipCluster && !c.OnlyInterruption && !c.OnlyFetch {
		if rep.Cluster, err = measureCluster(ctx, c, e, prog); err != nil {
			return nil, err
		}
	}
	if c.ColdRuns > 0 && everything {
		prog.say("cold start: building the CLI and the anchor")
		cs, err := measureColdStart(ctx, c, mods["sha256"], prog)
		if err != nil {
			rep.Notes = append(rep.Notes, "cold start not measured: "+err.Error())
		}
		rep.ColdStart = cs
	}
	if c.RSSTasks[0] > 0 && everything {
		prog.say(fmt.Sprintf("RSS: %d isolated tasks in a child process", c.RSSTasks[1]))
		rss, err := measureRSS(ctx, mods["noop"], cacheDir, c.RSSTasks)
		if err != nil {
			rep.Notes = append(rep.Notes, "RSS not measured: "+err.Error())
		}
		rep.RSS = rss
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rep.finish(c, wls)
	prog.done()
	rep.WriteTable(c.Out)
	return rep, nil
}

// modulePaths finds the committed no-op module and builds the Go guests.
func modulePaths() (map[string]string, error) {
	root, err := testmod.Root()
	if err != nil {
		return nil, err
	}
	mods := map[string]string{"noop": filepath.Join(root, "testdata", "wat", "noop.wasm")}
	for _, name := range []string{"fib", "sha256"} {
		if mods[name], err = testmod.Build(name); err != nil {
			return nil, err
		}
	}
	return mods, nil
}

// engines are the two the harness measures: as configured by default, and
// with Config.Preinitialize (fresh instances from a template).
type engines struct{ plain, preinit *engine.Engine }

// runGo measures every Go-side cell: each workload, worker count and
// executor, latency then throughput, one executor at a time.
func runGo(ctx context.Context, c Config, es engines, mods map[string]string, wls []workload, rep *Report, prog *progress) error {
	compiled, compiledPre := map[string]*engine.Module{}, map[string]*engine.Module{}
	wasm := map[string][]byte{}
	for name, path := range mods {
		m, err := es.plain.CompileFile(ctx, path)
		if err != nil {
			return err
		}
		compiled[name] = m
		if compiledPre[name], err = es.preinit.CompileFile(ctx, path); err != nil {
			return err
		}
		if wasm[name], err = os.ReadFile(path); err != nil {
			return err
		}
	}
	// The anchors' code is compiled once per machine too. wazero keys its
	// cache by the runtime settings as well, so sharing the engine's cache
	// would be safe; a directory of their own keeps the engine's cache
	// holding only what the engine compiled.
	bareCache, err := wazero.NewCompilationCacheWithDir(filepath.Join(testmod.CacheDir(), "bench-bare-compiled"))
	if err != nil {
		return err
	}
	defer bareCache.Close(context.WithoutCancel(ctx))
	b := budget{time: c.Budget, minSamples: c.MinSamples, maxSamples: 200_000}
	total := 0
	for _, wl := range wls {
		for _, w := range c.Workers {
			for _, sys := range wl.systems {
				if goSystem(sys) && (!anchorSystem(sys) || w == 1) {
					total++
				}
			}
		}
	}
	n := 0
	for _, wl := range wls {
		want, err := wl.native(wl.input)
		if err != nil {
			return fmt.Errorf("%s: %w", wl.key, err)
		}
		var timeout time.Duration
		if wl.timeout {
			timeout = c.Timeout
		}
		task := engine.Task{Module: compiled[wl.module], Func: wl.fn, Input: wl.input}
		for _, w := range c.Workers {
			for _, sys := range wl.systems {
				if !goSystem(sys) || (anchorSystem(sys) && w != 1) {
					continue
				}
				n++
				prog.say(fmt.Sprintf("[%d/%d] %s, %s, %d worker(s)", n, total, wl.label, sys, w))
				var r runner
				switch sys {
				case sysNative:
					r = newNativePool(w, wl.native, wl.input, want, timeout)
				case sysThreads, sysProcesses:
					mode := pool.Threads
					if sys == sysProcesses {
						mode = pool.Processes
					}
					r, err = newPoolRunner(ctx, es.plain, pool.Config{Mode: mode, Workers: w}, task, want, timeout)
				case sysSubprocess:
					cfg := pool.Config{Mode: pool.Threads, Workers: w, Isolation: pool.Subprocess}
					r, err = newPoolRunner(ctx, es.plain, cfg, task, want, timeout)
				case sysPreinit:
					t := task
					t.Module = compiledPre[wl.module]
					r, err = newPoolRunner(ctx, es.preinit, pool.Config{Mode: pool.Processes, Workers: w}, t, want, timeout)
				case sysBare:
					r, err = newBareRunner(ctx, bareCache, wasm[wl.module], wl.fn, wl.input, want)
				case sysBareWarm:
					r, err = newBareWarmRunner(ctx, bareCache, wasm[wl.module], wl.fn, wl.input, want)
				}
				if err != nil {
					return fmt.Errorf("%s on %s: %w", wl.key, sys, err)
				}
				cell, err := measureCell(ctx, b, r, !anchorSystem(sys), w)
				r.close()
				if err != nil {
					return fmt.Errorf("%s on %s with %d worker(s): %w", wl.key, sys, w, err)
				}
				cell.Workload, cell.System, cell.Workers = wl.key, sys, w
				rep.Cells = append(rep.Cells, cell)
			}
		}
	}
	return nil
}

func goSystem(sys string) bool { return sys != sysPyThread && sys != sysPyProcess }

// anchorSystem is bare wazero: measured for latency, with 1 worker only.
func anchorSystem(sys string) bool { return sys == sysBare || sys == sysBareWarm }

func measureCell(ctx context.Context, b budget, r runner, throughput bool, workers int) (Cell, error) {
	lat, err := measureLatency(ctx, b, r.one)
	if err != nil {
		return Cell{}, err
	}
	cell := Cell{Latency: &lat}
	if throughput {
		tp, err := measureThroughput(ctx, b, batchSize(b, lat.P50, workers), r.batch)
		if err != nil {
			return Cell{}, err
		}
		cell.Throughput = &tp
	}
	return cell, nil
}

// progress is the status line on stderr: redrawn in place on a terminal,
// one line per step otherwise.
type progress struct {
	w     io.Writer
	tty   bool
	shown bool
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

func (p *progress) say(s string) {
	if p.w == nil {
		return
	}
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[Kbench: %s", s)
		p.shown = true
		return
	}
	fmt.Fprintf(p.w, "bench: %s\n", s)
}

func (p *progress) done() {
	if p.shown {
		fmt.Fprint(p.w, "\r\033[K")
		p.shown = false
	}
}

// gomaxprocs is the CPU count the run had, for the report.
func gomaxprocs() int { return runtime.GOMAXPROCS(0) }

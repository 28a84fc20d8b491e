package main

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/future"
	"github.com/wasmpool/wasmpool/pool"
)

type benchFlags struct {
	engineFlags
	fn        string
	input     string
	params    string
	env       []string
	mounts    []string
	tasks     int
	samples   int
	workers   string
	mode      string
	isolation string
	quick     bool
	timeout   time.Duration
	progress  string
	json      bool
}

// benchRow is one mode and worker count's measurement.
type benchRow struct {
	Mode      string  `json:"mode"`
	Isolation string  `json:"isolation"` // in-process, or process (each worker in a worker process)
	Workers   int     `json:"workers"`
	Tasks     int     `json:"tasks"` // run in the row, latency and throughput phases together
	Failed    int     `json:"failed"`
	PerSec    float64 `json:"tasks_per_s"`
	// Latency: one task at a time, the round trip Submit -> Result.
	Samples int           `json:"latency_samples"`
	P50     time.Duration `json:"latency_p50_ns"`
	P90     time.Duration `json:"latency_p90_ns"`
	P99     time.Duration `json:"latency_p99_ns"`
	Sandbox time.Duration `json:"sandbox_p50_ns"` // time inside the sandbox, median over every task of the row
}

func (a *app) benchCmd() *cobra.Command {
	var f benchFlags
	cmd := &cobra.Command{
		Use:   "bench MODULE [--func NAME] [-- ARGS...]",
		Short: "Measure a task in each mode and worker count, and recommend a mode",
		Long: `Measure one task of your module the way a pool runs it, to choose a mode.

For each mode (thread-like: warm instances reused; process-like: a fresh
instance per task), each isolation (guest code in this process, or each
worker in a worker process of its own) and each worker count, it measures
the latency of one
task at a time (the round trip Submit -> Result: median, p90, p99), then the
throughput with tasks in flight. It also measures what one instance costs:
the time to instantiate the module, the time of a call on a warm instance,
and the linear memory after instantiation and after tasks. It then says
which mode and isolation it recommends and why. --quick measures fewer
tasks on the fewest and the most workers, for a first answer in seconds.

The task is given as to wasmpool run: --func NAME with --input (an SDK task)
or --params (any other export), or a WASI command with its ARGS after --;
--env and --mount give the guest what it needs.

Failed tasks are counted and the first failure is reported; the exit status
is that of the first failure.`,
		Example: `  wasmpool bench upper.wasm --func upper --input README.md
  wasmpool bench fib.wasm --func fib --input n.txt --workers 1,2,4 --json
  wasmpool bench add.wasm --func add --params 2,3 --mode thread
  wasmpool bench tool.wasm --mount ./data:/data:ro -- ls /data`,
		Args: minArgs(1, "MODULE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runBench(cmd, &f, args[0], args[1:])
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&f.fn, "func", "", "exported function to call (required unless MODULE is a WASI command)")
	fs.StringVar(&f.input, "input", "", `task input: a file, or "-" for stdin`)
	fs.StringVar(&f.params, "params", "", `raw arguments for a non-SDK export, comma-separated, e.g. "1,2"`)
	fs.StringArrayVar(&f.env, "env", nil, "environment variable KEY=VALUE for the guest (repeat)")
	fs.StringArrayVar(&f.mounts, "mount", nil, "host directory HOST:GUEST[:ro] the guest may see (repeat)")
	fs.IntVar(&f.tasks, "tasks", 500, "tasks per row (mode, isolation, worker count) for the throughput measure (--quick: 100)")
	fs.IntVar(&f.samples, "samples", 100, "tasks per row run one at a time, for the latency measure (--quick: 20)")
	fs.StringVar(&f.workers, "workers", "", "worker counts to measure, e.g. 1,2,4 (default: 1, 2, 4... up to one per CPU; --quick: 1 and one per CPU)")
	fs.StringVar(&f.mode, "mode", "both", "thread, process or both")
	fs.StringVar(&f.isolation, "isolation", "both", "in-process, process (each worker in a worker process) or both")
	fs.BoolVar(&f.quick, "quick", false, "a first answer in seconds: fewer tasks and at most about a second per row, the fewest and the most workers")
	fs.DurationVar(&f.timeout, "timeout", 0, "stop each task after this long (default none)")
	fs.StringVar(&f.progress, "progress", progressAuto, "progress line on stderr: auto (when a terminal), always or never")
	fs.BoolVar(&f.json, "json", false, "print the results as one JSON object instead of a table")
	f.engineFlags.add(fs)
	return cmd
}

// benchPlan is what the flags ask for, checked.
type benchPlan struct {
	modes      []pool.Mode
	isolations []string
	workers    []int
	env        map[string]string
	mounts     []engine.Mount
}

func (f *benchFlags) check(changed func(string) bool) (benchPlan, error) {
	var p benchPlan
	if f.quick {
		if !changed("tasks") {
			f.tasks = 100
		}
		if !changed("samples") {
			f.samples = 20
		}
	}
	switch f.isolation {
	case "both":
		p.isolations = []string{isolationInProcess, "process"}
	default:
		if _, err := pool.ParseIsolation(f.isolation); err != nil {
			return p, usagef("--isolation: %v (or both)", err)
		}
		p.isolations = []string{f.isolation}
	}
	if f.mode == "both" {
		p.modes = []pool.Mode{pool.Threads, pool.Processes}
	} else {
		m, err := pool.ParseMode(f.mode)
		if err != nil {
			return p, usagef("--mode: %v (or both)", err)
		}
		p.modes = []pool.Mode{m}
	}
	switch {
	case f.tasks < 1:
		return p, usagef("--tasks %d: want 1 or more", f.tasks)
	case f.samples < 1:
		return p, usagef("--samples %d: want 1 or more", f.samples)
	case f.params != "" && f.fn == "":
		return p, usagef("--params needs --func: the export to call")
	}
	var err error
	if p.workers, err = workerCounts(f.workers, runtime.GOMAXPROCS(0)); err != nil {
		return p, err
	}
	if f.quick && f.workers == "" && len(p.workers) > 2 {
		p.workers = []int{p.workers[0], p.workers[len(p.workers)-1]}
	}
	if p.env, err = parseEnv(f.env); err != nil {
		return p, err
	}
	if p.mounts, err = parseMounts(f.mounts); err != nil {
		return p, err
	}
	return p, checkTimeout(f.timeout)
}

// workerCounts reads --workers: a list of counts, or by default 1, 2, 4...
// up to cpus, and cpus itself. 0 means cpus.
func workerCounts(s string, cpus int) ([]int, error) {
	if s == "" {
		var ns []int
		for n := 1; n < cpus; n *= 2 {
			ns = append(ns, n)
		}
		return append(ns, cpus), nil
	}
	var ns []int
	for _, field := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(field))
		if err != nil || n < 0 {
			return nil, usagef("--workers %q: want worker counts separated by commas, e.g. 1,2,4", s)
		}
		if n == 0 {
			n = cpus
		}
		if !slices.Contains(ns, n) {
			ns = append(ns, n)
		}
	}
	return ns, nil
}

func (a *app) runBench(cmd *cobra.Command, f *benchFlags, path string, args []string) error {
	plan, err := f.check(cmd.Flags().Changed)
	if err != nil {
		return err
	}
	if _, err := statModule(path); err != nil {
		return err
	}
	input, _, err := a.readInput(f.input)
	if err != nil {
		return err
	}
	ctx := a.ctx
	e, err := f.newEngine(ctx, cmd.Flags(), a.stderr)
	if err != nil {
		return err
	}
	defer e.Close(context.WithoutCancel(ctx))
	a.started(path)
	m, err := e.CompileFile(ctx, path)
	if err != nil {
		return err
	}
	a.module = m.Name()
	x, err := funcExport(m, f.fn)
	if err != nil {
		return err
	}
	if len(args) > 0 && f.fn != "" {
		return usagef("ARGS are a WASI command's arguments: an export (--func %s) takes --input or --params", f.fn)
	}
	t := engine.Task{Module: m, Func: f.fn, Input: input, Args: args, Env: plan.env, Mounts: plan.mounts, Timeout: f.timeout}
	if f.fn != "" {
		if f.params != "" || !x.IsTask() {
			if t.Params, err = parseParams(f.params, x); err != nil {
				return usagef("--params: %v", err)
			}
		}
	}

	perRow := f.samples + f.tasks
	rows := len(plan.modes) * len(plan.isolations) * len(plan.workers)
	runs := profileRuns(f.samples)
	if f.quick {
		runs = min(runs, 5)
	}
	total := runs*2 + rows*perRow
	if f.quick {
		total = -1 // rows stop on time as well as on count
	}
	prog, err := newProgress(f.progress, a.stdout, a.stderr, total)
	if err != nil {
		return err
	}
	res := benchResult{Module: m.Name(), Func: f.fn, InputBytes: len(input), GOMAXPROCS: runtime.GOMAXPROCS(0)}
	res.Instance = profileInstance(ctx, e, t, runs, prog)
	status := exitOK
	for _, mode := range plan.modes {
		for _, iso := range plan.isolations {
			for _, w := range plan.workers {
				if ctx.Err() != nil {
					break
				}
				row, st, err := a.benchRow(e, mode, iso, w, f, t, prog)
				if err != nil {
					prog.finish()
					return err
				}
				if status == exitOK {
					status = st
				}
				res.Rows = append(res.Rows, row)
			}
		}
	}
	prog.finish()
	res.Recommended, res.RecommendedIsolation, res.Why = recommend(&res, t.Func == "")
	if f.json {
		writeOut(nil, a.stdout, jsonIndent(res))
	} else {
		writeBench(a.stdout, &res, f)
	}
	if ctx.Err() != nil {
		report(a.stderr, "interrupted")
		return &exitStatus{code: exitCancelled}
	}
	if status != exitOK {
		return &exitStatus{code: status}
	}
	return nil
}

// benchRow measures one mode and worker count: a warm-up (a task per
// worker, not counted), the latency of f.samples tasks one at a time, then
// the throughput of f.tasks tasks with 4 per worker in flight.
func (a *app) benchRow(e *engine.Engine, mode pool.Mode, iso string, workers int, f *benchFlags, t engine.Task, prog *progress) (benchRow, int, error) {
	ctx := a.ctx
	cfg := pool.Config{Mode: mode, Workers: workers}
	if err := (&isolationFlag{isolation: iso}).apply(&cfg); err != nil {
		return benchRow{}, 0, err
	}
	p, err := pool.New(e, cfg)
	if err != nil {
		return benchRow{}, 0, usagef("%v", err)
	}
	defer p.Close()
	row := benchRow{Mode: mode.String(), Isolation: iso, Workers: workers}
	warm := make([]*future.Future[engine.Result], workers)
	for i := range warm {
		warm[i] = p.Submit(ctx, t)
	}
	for _, fu := range warm {
		_ = fu.Err(ctx) // a failing task fails below too, and is counted there
	}

	// --quick bounds each row's time as well as its tasks: a task of 100ms
	// would otherwise make a "quick" run take minutes.
	var budget time.Duration
	if f.quick {
		budget = quickRowBudget
	}
	rowStart := time.Now()
	over := func(share time.Duration, done int) bool {
		return budget > 0 && done >= 3 && time.Since(rowStart) > share
	}

	var firstErr error
	var sandbox, latency []time.Duration
	status := exitOK
	fail := func(err error) {
		row.Failed++
		if firstErr == nil {
			firstErr = err
			status = failureStatus(err)
		}
	}
	for i := range f.samples {
		if ctx.Err() != nil || over(budget/3, i) {
			break
		}
		start := time.Now()
		res, err := p.Submit(ctx, t).Result(ctx)
		latency = append(latency, time.Since(start))
		sandbox = append(sandbox, res.Duration)
		row.Tasks++
		if err != nil && ctx.Err() == nil {
			fail(err)
		}
		prog.add(err != nil)
	}

	n := 0
	next := func() (*item, bool) {
		if n >= f.tasks || over(budget, n) {
			return nil, false
		}
		n++
		return &item{label: fmt.Sprintf("task %d", n), task: t}, true
	}
	start := time.Now()
	// Not runItems' own progress: it would take the row's total for the whole.
	sum := runItems(ctx, p, next, runOptions{window: 4 * workers, unordered: true}, nil, func(o outcome) {
		prog.add(o.err != nil)
		sandbox = append(sandbox, o.res.Duration)
		if o.err != nil {
			fail(o.err)
		}
	})
	wall := time.Since(start)
	row.Tasks += sum.total
	if wall > 0 {
		row.PerSec = float64(sum.total) / wall.Seconds()
	}
	if firstErr != nil {
		printLine(prog, a.stderr, fmt.Sprintf("wasmpool: %s, %s, %d worker(s): %d of %d tasks failed, the first: %s",
			mode, iso, workers, row.Failed, row.Tasks, errorLine(t.Module.Name(), firstErr)))
	}
	slices.Sort(latency)
	slices.Sort(sandbox)
	row.Samples = len(latency)
	row.P50, row.P90, row.P99 = percentile(latency, 50), percentile(latency, 90), percentile(latency, 99)
	row.Sandbox = percentile(sandbox, 50)
	return row, status, nil
}

// quickRowBudget is about how long --quick spends on one row.
const quickRowBudget = time.Second

func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*p + 99) / 100
	return sorted[min(max(i-1, 0), len(sorted)-1)]
}

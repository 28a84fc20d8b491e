package main

import (
	"fmt"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/pool"
)

type benchFlags struct {
	engineFlags
	fn      string
	input   string
	tasks   int
	workers int
	mode    string
	timeout time.Duration
}

// benchRow is one mode's measurement.
type benchRow struct {
	mode                   pool.Mode
	workers, tasks, failed int
	wall                   time.Duration
	p50, p90, p99          time.Duration // time in the sandbox, per task
}

func (a *app) benchCmd() *cobra.Command {
	var f benchFlags
	cmd := &cobra.Command{
		Use:   "bench MODULE --func NAME",
		Short: "Measure throughput and latency of a task in each mode, for choosing one",
		Long: `Run the same task many times on a pool in each mode (thread-like: warm
instances reused; process-like: a fresh instance per task) and print the
throughput and the latency percentiles of the time spent in the sandbox.`,
		Example: `  wasmpool bench upper.wasm --func upper --input README.md --tasks 5000`,
		Args:    exactArgs(1, "MODULE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runBench(cmd, &f, args[0])
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&f.fn, "func", "", "exported function to call (required unless MODULE is a WASI command)")
	fs.StringVar(&f.input, "input", "", `task input: a file, or "-" for stdin`)
	fs.IntVar(&f.tasks, "tasks", 1000, "tasks to run in each mode")
	fs.IntVar(&f.workers, "workers", 0, "number of workers (default: one per CPU)")
	fs.StringVar(&f.mode, "mode", "both", "thread, process or both")
	fs.DurationVar(&f.timeout, "timeout", 0, "stop each task after this long (default none)")
	f.engineFlags.add(fs)
	return cmd
}

func (a *app) runBench(cmd *cobra.Command, f *benchFlags, path string) error {
	var modes []pool.Mode
	if f.mode == "both" {
		modes = []pool.Mode{pool.Threads, pool.Processes}
	} else {
		m, err := pool.ParseMode(f.mode)
		if err != nil {
			return usagef("--mode: %v (or both)", err)
		}
		modes = []pool.Mode{m}
	}
	switch {
	case f.tasks < 1:
		return usagef("--tasks %d: want 1 or more", f.tasks)
	case f.workers < 0:
		return usagef("--workers %d: want 1 or more (0: one per CPU)", f.workers)
	}
	if err := checkTimeout(f.timeout); err != nil {
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
	defer e.Close(ctx)
	a.started(path)
	m, err := e.CompileFile(ctx, path)
	if err != nil {
		return err
	}
	a.module = m.Name()
	if f.fn == "" && !m.IsCommand() {
		return usagef("module %s is not a WASI command: name the function with --func (exports: %s)", m.Name(), exportList(m))
	}
	if _, ok := findExport(m, f.fn); f.fn != "" && !ok {
		return usagef("module %s has no exported function %q (exports: %s)", m.Name(), f.fn, exportList(m))
	}

	t := engine.Task{Module: m, Func: f.fn, Input: input}
	var rows []benchRow
	status := exitOK
	for _, mode := range modes {
		row, st, err := a.benchMode(e, mode, f, t)
		if err != nil {
			return err
		}
		if status == exitOK {
			status = st
		}
		rows = append(rows, row)
		if ctx.Err() != nil {
			break
		}
	}
	writeBench(a, rows)
	if ctx.Err() != nil {
		report(a.stderr, "interrupted")
		return &exitStatus{code: exitCancelled}
	}
	if status != exitOK {
		return &exitStatus{code: status}
	}
	return nil
}

func (a *app) benchMode(e *engine.Engine, mode pool.Mode, f *benchFlags, t engine.Task) (benchRow, int, error) {
	p, err := pool.New(e, pool.Config{Mode: mode, Workers: f.workers, TaskTimeout: f.timeout})
	if err != nil {
		return benchRow{}, 0, usagef("%v", err)
	}
	defer p.Close()
	row := benchRow{mode: mode, workers: p.Workers()}
	n := 0
	next := func() (*job, bool) {
		if n >= f.tasks {
			return nil, false
		}
		n++
		return &job{label: fmt.Sprintf("task %d", n), task: t}, true
	}
	durations := make([]time.Duration, 0, f.tasks)
	var firstErr error
	start := time.Now()
	sum := runJobs(a.ctx, p, next, runOptions{window: 2 * p.Workers(), unordered: true}, nil, func(o outcome) {
		durations = append(durations, o.res.Duration)
		if o.err != nil && firstErr == nil {
			firstErr = o.err
		}
	})
	row.wall = time.Since(start)
	row.tasks, row.failed = sum.total, sum.failed
	if firstErr != nil {
		report(a.stderr, "%s: %d of %d tasks failed, the first: %s", mode, sum.failed, sum.total, errorLine(t.Module.Name(), firstErr))
	}
	slices.Sort(durations)
	row.p50, row.p90, row.p99 = percentile(durations, 50), percentile(durations, 90), percentile(durations, 99)
	return row, sum.status, nil
}

func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*p + 99) / 100
	return sorted[min(max(i-1, 0), len(sorted)-1)]
}

func writeBench(a *app, rows []benchRow) {
	w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "mode\tworkers\ttasks\tfailed\twall\ttasks/s\tp50\tp90\tp99")
	for _, r := range rows {
		rate := 0.0
		if r.wall > 0 {
			rate = float64(r.tasks) / r.wall.Seconds()
		}
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%v\t%.0f\t%v\t%v\t%v\n", r.mode, r.workers, r.tasks, r.failed,
			r.wall.Round(time.Microsecond), rate, r.p50, r.p90, r.p99)
	}
	_ = w.Flush()
	fmt.Fprintln(a.stdout, "(p50/p90/p99: time inside the sandbox per task; wall: the whole run)")
}

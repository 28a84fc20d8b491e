package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// benchResult is everything wasmpool bench measured, as --json prints it.
type benchResult struct {
	Module      string          `json:"module"`
	Func        string          `json:"func,omitempty"`
	InputBytes  int             `json:"input_bytes"`
	GOMAXPROCS  int             `json:"gomaxprocs"`
	Instance    instanceProfile `json:"instance"`
	Rows        []benchRow      `json:"rows"`
	Recommended string          `json:"recommended_mode,omitempty"` // thread or process; "" when no task succeeded
	// RecommendedIsolation is in-process or process; "" when no task
	// succeeded.
	RecommendedIsolation string `json:"recommended_isolation,omitempty"`
	Why                  string `json:"why"`
}

// processesGoodEnough: when process-like workers reach this share of the
// thread-like throughput, isolation is cheap enough to recommend them.
const processesGoodEnough = 0.8

// workerProcessesWorth: worker processes are recommended when they give at
// least this much more throughput than in-process workers of the same mode
// (they cost a round trip over a pipe per task, and a process per worker).
const workerProcessesWorth = 1.1

// recommend picks a mode and an isolation from the figures, and says why in
// a sentence or two that never contradicts them.
func recommend(r *benchResult, command bool) (mode, iso, why string) {
	mode, why = recommendMode(r, command)
	if mode == "" {
		return "", "", why
	}
	iso, isoWhy := recommendIsolation(r, mode)
	return mode, iso, why + isoWhy
}

// bestPerSec is the best throughput of the rows of mode (threads or
// processes) and isolation ("" for any) in which no task failed.
func bestPerSec(r *benchResult, mode, iso string) float64 {
	best := 0.0
	for _, row := range r.Rows {
		if row.Failed == 0 && row.Mode == mode && (iso == "" || row.Isolation == iso) {
			best = max(best, row.PerSec)
		}
	}
	return best
}

func recommendMode(r *benchResult, command bool) (mode, why string) {
	p := r.Instance
	ok := 0
	for _, row := range r.Rows {
		if row.Failed < row.Tasks {
			ok++
		}
	}
	switch {
	case ok == 0 && len(r.Rows) > 0:
		return "", "No recommendation: every task failed."
	case command:
		return "process", fmt.Sprintf("A WASI command gets a fresh instance for every run in either mode (%s a run here), "+
			"so process-like workers cost nothing more and share nothing.", fmtDur(p.Instantiate))
	case p.CarryOver == "yes":
		return "process", fmt.Sprintf("A reused instance gave a different result than a fresh one: state carries over "+
			"between tasks, so use process-like workers (a fresh instance costs %s), unless sharing that state is the point.",
			fmtDur(p.Instantiate))
	}
	threads, processes := bestPerSec(r, "threads", ""), bestPerSec(r, "processes", "")
	if threads > 0 && processes > 0 {
		share := processes / threads
		if share >= processesGoodEnough {
			return "process", fmt.Sprintf("Process-like workers reach %.0f%% of thread-like throughput (a fresh instance: %s; "+
				"a call on a warm one: %s) and give every task a clean sandbox.", share*100, fmtDur(p.Instantiate), fmtDur(p.Call))
		}
		costs := ""
		if p.Call < p.Instantiate {
			// Said only when it is what the figures show.
			costs = fmt.Sprintf(": a call on a warm instance (%s) is cheaper than a fresh instance (%s)", fmtDur(p.Call), fmtDur(p.Instantiate))
		}
		return "thread", fmt.Sprintf("Thread-like workers ran %sx the tasks per second of process-like ones%s; "+
			"no state carried over in %d tasks on one instance%s. Use process-like workers if tasks must not see each other.",
			fmtTimes(1/share), costs, p.Runs, carryNote(p))
	}
	// One mode measured: decide from the instance's costs.
	if p.Call > 0 && p.Instantiate <= p.Call/4 {
		return "process", fmt.Sprintf("A fresh instance (%s) is cheap next to the task itself (%s on a warm instance), "+
			"so process-like workers isolate every task for little.", fmtDur(p.Instantiate), fmtDur(p.Call))
	}
	if p.Call < p.Instantiate {
		return "thread", fmt.Sprintf("A call on a warm instance (%s) is cheaper than a fresh instance (%s), and no state "+
			"carried over in %d tasks on one instance%s.", fmtDur(p.Call), fmtDur(p.Instantiate), p.Runs, carryNote(p))
	}
	return "thread", fmt.Sprintf("A fresh instance (%s) is not cheap next to a call on a warm one (%s), and no state "+
		"carried over in %d tasks on one instance%s.", fmtDur(p.Instantiate), fmtDur(p.Call), p.Runs, carryNote(p))
}

// recommendIsolation says where the workers of mode should run: in this
// process, unless worker processes were measured and were clearly faster.
func recommendIsolation(r *benchResult, mode string) (iso, why string) {
	rowMode := map[string]string{"thread": "threads", "process": "processes"}[mode]
	in, out := bestPerSec(r, rowMode, isolationInProcess), bestPerSec(r, rowMode, "process")
	switch {
	case out > 0 && (in == 0 || out >= in*workerProcessesWorth):
		if in == 0 {
			return "process", ""
		}
		return "process", fmt.Sprintf(" With --isolation subprocess its workers ran %sx the tasks per second of in-process ones, "+
			"and a guest that brings down its process fails only its own task.", fmtTimes(out/in))
	case out > 0 && in > 0:
		return isolationInProcess, fmt.Sprintf(" In process: worker processes (--isolation subprocess) ran %sx the "+
			"tasks per second, not enough to pay for a process per worker.", fmtTimes(out/in))
	}
	return isolationInProcess, ""
}

func carryNote(p instanceProfile) string {
	if p.CarryOver == "unknown" {
		return " (as far as could be told: the task's output varies from run to run)"
	}
	return ""
}

func writeBench(w io.Writer, r *benchResult, f *benchFlags) {
	p := r.Instance
	fn := r.Func
	if fn == "" {
		fn = "_start"
	}
	fmt.Fprintf(w, "%s, %s, %d bytes of input, GOMAXPROCS %d\n\n", r.Module, fn, r.InputBytes, r.GOMAXPROCS)
	if r.Func == "" {
		fmt.Fprintf(w, "instance  a whole run of the command (a fresh instance): %s (median of %d)\n", fmtDur(p.Instantiate), p.Runs)
	} else {
		fmt.Fprintf(w, "instance  instantiation: %s (median of %d); a call on a warm instance: %s\n",
			fmtDur(p.Instantiate), p.Runs, fmtDur(p.Call))
		fmt.Fprintf(w, "memory    linear memory %s after instantiation, %s after one task, %s after %d tasks on one instance\n",
			fmtBytes(p.MemoryInstantiated), fmtBytes(p.MemoryAfterTask), fmtBytes(p.MemoryAfterRuns), p.Runs)
		fmt.Fprintf(w, "state     carried over between tasks on one instance: %s\n", p.CarryOver)
	}
	if p.Error != "" {
		fmt.Fprintf(w, "failure   %s\n", p.Error)
	}
	fmt.Fprintln(w)

	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "mode\tisolation\tworkers\ttasks\tfailed\ttasks/s\tp50\tp90\tp99\tin sandbox p50\t")
	for _, row := range r.Rows {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%.1f\t%s\t%s\t%s\t%s\t\n", row.Mode, row.Isolation, row.Workers, row.Tasks, row.Failed, row.PerSec,
			fmtDur(row.P50), fmtDur(row.P90), fmtDur(row.P99), fmtDur(row.Sandbox))
	}
	_ = tw.Flush()
	upTo := ""
	if f.quick {
		upTo = "up to " // each row also stops after about a second
	}
	fmt.Fprintf(w, "(p50/p90/p99: latency of one task at a time, the round trip Submit -> Result, %s%d per row;\n"+
		" tasks/s: %s%d tasks per row, 4 per worker in flight; in sandbox: time inside the guest per task)\n\n", upTo, f.samples, upTo, f.tasks)
	if r.Recommended != "" {
		fmt.Fprintf(w, "recommended: --mode %s --isolation %s. %s\n", r.Recommended, r.RecommendedIsolation, r.Why)
	} else {
		fmt.Fprintln(w, r.Why)
	}
}

func jsonIndent(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return []byte(fmt.Sprintf("{\"error\": %q}\n", err.Error()))
	}
	return b.Bytes()
}

func fmtDur(d time.Duration) string {
	switch {
	case d < time.Microsecond:
		return fmt.Sprintf("%dns", d.Nanoseconds())
	case d < time.Millisecond:
		return fmt.Sprintf("%.1fµs", float64(d)/1e3)
	case d < time.Second:
		return fmt.Sprintf("%.2fms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}

// fmtTimes prints a ratio with the precision it deserves: 1.3, 12, 345.
func fmtTimes(v float64) string {
	if v >= 10 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

func fmtBytes(n uint64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.0f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

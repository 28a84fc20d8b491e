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
	Why         string          `json:"why"`
}

// processesGoodEnough: when process-like workers reach this share of the
// thread-like throughput, isolation is cheap enough to recommend them.
const processesGoodEnough = 0.8

// recommend picks a mode from the figures, and says why in a sentence or two.
func recommend(r *benchResult, command bool) (mode, why string) {
	p := r.Instance
	best := map[string]float64{}
	ok := 0
	for _, row := range r.Rows {
		if row.Failed < row.Tasks {
			ok++
		}
		if row.Failed == 0 {
			best[row.Mode] = max(best[row.Mode], row.PerSec)
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
	threads, processes := best["threads"], best["processes"]
	if threads > 0 && processes > 0 {
		share := processes / threads
		if share >= processesGoodEnough {
			return "process", fmt.Sprintf("A fresh instance (%s) is cheap next to the task itself (%s on a warm instance): "+
				"process-like workers reach %.0f%% of thread-like throughput and give every task a clean sandbox.",
				fmtDur(p.Instantiate), fmtDur(p.Call), share*100)
		}
		return "thread", fmt.Sprintf("A call on a warm instance (%s) is cheaper than a fresh instance (%s): thread-like "+
			"workers run %sx the tasks per second, and no state carried over in %d tasks on one instance%s. "+
			"Use process-like workers if tasks must not see each other.",
			fmtDur(p.Call), fmtDur(p.Instantiate), fmtTimes(1/share), p.Runs, carryNote(p))
	}
	// One mode measured: decide from the instance's costs.
	if p.Call > 0 && p.Instantiate <= p.Call/4 {
		return "process", fmt.Sprintf("A fresh instance (%s) is cheap next to the task itself (%s on a warm instance), "+
			"so process-like workers isolate every task for little.", fmtDur(p.Instantiate), fmtDur(p.Call))
	}
	return "thread", fmt.Sprintf("A call on a warm instance (%s) is cheaper than a fresh instance (%s), and no state "+
		"carried over in %d tasks on one instance%s.", fmtDur(p.Call), fmtDur(p.Instantiate), p.Runs, carryNote(p))
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
	fmt.Fprintln(tw, "mode\tworkers\ttasks\tfailed\ttasks/s\tp50\tp90\tp99\tin sandbox p50\t")
	for _, row := range r.Rows {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.1f\t%s\t%s\t%s\t%s\t\n", row.Mode, row.Workers, row.Tasks, row.Failed, row.PerSec,
			fmtDur(row.P50), fmtDur(row.P90), fmtDur(row.P99), fmtDur(row.Sandbox))
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "(p50/p90/p99: latency of one task at a time, the round trip Submit -> Result, %d per row;\n"+
		" tasks/s: %d tasks per row, 4 per worker in flight; in sandbox: time inside the guest per task)\n\n", f.samples, f.tasks)
	if r.Recommended != "" {
		fmt.Fprintf(w, "recommended: --mode %s. %s\n", r.Recommended, r.Why)
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

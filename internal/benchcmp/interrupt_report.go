package benchcmp

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// Issue 12's targets and table (see interrupt.go for the measures).
const (
	goalTimeoutRatio = 1.15
	goalFuelRatio    = 1.5
	goalCLIRatio     = 1.15
	goalStopP99      = 10 * time.Millisecond
	goalNoopTimeout  = 1500 * time.Nanosecond
)

func (r *Report) interruptTargets() []Target {
	var ts []Target
	for _, k := range r.Interruption {
		ts = append(ts, ratioTarget(fmt.Sprintf("In process, timeout enforced: %s vs bare wazero (median of %d rounds)", k.Kernel, k.Rounds),
			k.Ratios[varTimeout], goalTimeoutRatio, fmt.Sprintf("bare wazero %s; close-on-context-done %sx", fmtDur(k.Floor), fmtRatio(k.Ratios[varCloseOnDone]))))
	}
	for _, k := range r.Interruption {
		ts = append(ts, ratioTarget(fmt.Sprintf("  the same with a fuel budget: %s", k.Kernel), k.Ratios[varFuel], goalFuelRatio, ""))
	}
	t := Target{Name: "wasmpool run vs wazero run of a CPU-bound command (median)", Unit: "ratio", Goal: fmt.Sprintf("<= %.2f", goalCLIRatio)}
	if c := r.CLIRun; c != nil && c.Wazero > 0 {
		ratio := float64(c.Wasmpool) / float64(c.Wazero)
		t.Name = fmt.Sprintf("wasmpool run vs wazero run: %s (median of %d)", c.Command, c.Runs)
		t.Value, t.Display, t.Met = ratio, fmtRatio(ratio), met(ratio <= goalCLIRatio)
		t.Anchor = fmt.Sprintf("wasmpool %s, wazero %s", fmtDur(c.Wasmpool), fmtDur(c.Wazero))
	}
	ts = append(ts, t)
	t = Target{Name: "Stop latency of a 1 ms timeout, every P busy with guests (p99)", Unit: "ns", Goal: "<= " + fmtDur(goalStopP99)}
	if s := r.StopLatency; s != nil {
		t.Value, t.Display, t.Met = float64(s.P99), fmtDur(s.P99), met(s.P99 <= goalStopP99)
		t.Anchor = fmt.Sprintf("%d guests on %d Ps, %d stops: p50 %s, max %s", s.Guests, r.Meta.GOMAXPROCS, s.Samples, fmtDur(s.P50), fmtDur(s.Max))
	}
	ts = append(ts, t)
	return ts
}

func ratioTarget(name string, ratio, goal float64, anchor string) Target {
	t := Target{Name: name, Unit: "ratio", Goal: fmt.Sprintf("<= %.2f", goal), Anchor: anchor}
	if ratio > 0 {
		t.Value, t.Display, t.Met = ratio, fmtRatio(ratio)+"x", met(ratio <= goal)
	}
	return t
}

// writeInterruption prints the kernels' table.
func (r *Report) writeInterruption(w io.Writer) {
	if len(r.Interruption) == 0 {
		return
	}
	fmt.Fprint(w, `
interruption, in process: one warm instance per variant, calls interleaved round by round;
each ratio is the median over the rounds of the call's time over bare wazero's in the same round
(bare wazero: no interruption at all; close-on-context-done: wazero's own, a timeout per call;
wasmpool: the engine's instrumented checks, a timeout per call; fuel: the same with a budget)
`)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "kernel\tbare wazero\tclose-on-context-done\twasmpool timeout\twasmpool fuel\t")
	for _, k := range r.Interruption {
		fmt.Fprintf(tw, "%s\t%s\t%sx\t%sx\t%sx\t\n", k.Kernel, fmtDur(k.Floor), fmtRatio(k.Ratios[varCloseOnDone]),
			fmtRatio(k.Ratios[varTimeout]), fmtRatio(k.Ratios[varFuel]))
	}
	_ = tw.Flush()
}

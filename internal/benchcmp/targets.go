package benchcmp

import (
	"fmt"
	"strings"
	"time"
)

// Target is one of issue 4's targets, as measured in this run.
type Target struct {
	Name    string  `json:"name"`
	Display string  `json:"measured"` // the figure, as the table shows it
	Value   float64 `json:"value"`    // the figure, in Unit
	Unit    string  `json:"unit"`     // ns, ratio or growth (0.05 is +5%)
	Goal    string  `json:"target"`
	Anchor  string  `json:"anchor,omitempty"`
	Met     *bool   `json:"met"` // null when not measured
}

// The targets' thresholds (issue 4).
const (
	goalIsolatedNoop = 15 * time.Microsecond
	goalIsolatedGo   = time.Millisecond
	goalScalingSlack = 0.1
	goalColdStart    = 60 * time.Millisecond
	goalRSSGrowth    = 0.10
	// goalSubprocessRatio is issue 6's target for a CPU-bound Go guest.
	goalSubprocessRatio = 1.1
	// goalSubprocessPerTask is issue 13's: a no-op task through worker
	// processes at throughput (batches in flight, several tasks a frame).
	goalSubprocessPerTask = 20 * time.Microsecond
	scalingFew            = 1 // workers
	scalingMany           = 2
)

type anchorRef struct{ workload, system string }

func (r *Report) targets(c Config) []Target {
	ts := []Target{
		r.latencyTarget("Threads: no-op Submit->Result, timeout enforced", "noop+timeout", sysThreads, goalNoopTimeout,
			anchorRef{"noop+timeout", sysPyThread}),
		r.latencyTarget("Processes: isolated no-op, tiny module", "noop-isolated", sysProcesses, goalIsolatedNoop,
			anchorRef{"noop-isolated", sysBare}, anchorRef{"noop-isolated", sysPyProcess}),
		r.latencyTarget("Processes: isolated task of a Go guest (reactor)", "go-isolated", sysProcesses, goalIsolatedGo,
			anchorRef{"go-isolated", sysBare}),
		r.latencyTarget("  the same, with Config.Preinitialize", "go-isolated", sysPreinit, goalIsolatedGo,
			anchorRef{"go-isolated", sysBare}),
	}
	for _, wl := range []string{"fib", "sha256"} {
		for _, sys := range []string{sysThreads, sysProcesses} {
			ts = append(ts, r.scalingTarget(wl, sys))
		}
	}
	ts = append(ts, r.subprocessTarget(), r.subprocessThroughputTarget())
	ts = append(ts, r.coldStartTarget(c), r.rssTarget(c))
	ts = append(ts, r.interruptTargets()...)
	ts = append(ts, r.fetchTargets()...)
	ts = append(ts, r.clusterTargets()...)
	return ts
}

// subprocessTarget is issue 6's: a CPU-bound Go guest with its timeout
// enforced by a worker process, against the same task in-process with no
// enforcement at all (bare wazero, no interrupt checks), median latency.
func (r *Report) subprocessTarget() Target {
	t := Target{Name: "Worker processes: fib with a timeout vs in-process without enforcement (p50, 1 worker)",
		Unit: "ratio", Goal: fmt.Sprintf("<= %.1f", goalSubprocessRatio)}
	sub, bare := r.cell("fib+timeout", sysSubprocess, 1), r.cell("fib", sysBareWarm, 1)
	if sub == nil || bare == nil || sub.Latency == nil || bare.Latency == nil || bare.Latency.P50 <= 0 {
		return t
	}
	ratio := float64(sub.Latency.P50) / float64(bare.Latency.P50)
	t.Value, t.Display, t.Met = ratio, fmtRatio(ratio), met(ratio <= goalSubprocessRatio)
	t.Anchor = fmt.Sprintf("worker process %s, wazero warm %s", fmtDur(sub.Latency.P50), fmtDur(bare.Latency.P50))
	if in := r.cell("fib+timeout", sysThreads, 1); in != nil && in.Latency != nil {
		t.Anchor += fmt.Sprintf("; in-process with the timeout %s, ratio %s", fmtDur(in.Latency.P50),
			fmtRatio(float64(in.Latency.P50)/float64(bare.Latency.P50)))
	}
	return t
}

// subprocessThroughputTarget is issue 13's: the time per no-op task
// through worker processes at throughput (1 worker), beside in-process's.
func (r *Report) subprocessThroughputTarget() Target {
	t := Target{Name: "Worker processes: no-op task at throughput (per task, 1 worker)", Unit: "ns",
		Goal: "<= " + fmtDur(goalSubprocessPerTask)}
	sub := r.cell("noop", sysSubprocess, 1)
	if sub == nil || sub.Throughput == nil || sub.Throughput.PerSec <= 0 {
		return t
	}
	per := time.Duration(float64(time.Second) / sub.Throughput.PerSec)
	t.Value, t.Display, t.Met = float64(per), fmtDur(per), met(per <= goalSubprocessPerTask)
	if in := r.cell("noop", sysThreads, 1); in != nil && in.Throughput != nil && in.Throughput.PerSec > 0 {
		t.Anchor = "in process " + fmtDur(time.Duration(float64(time.Second)/in.Throughput.PerSec))
	}
	return t
}

func met(ok bool) *bool { return &ok }

// latencyTarget compares a cell's median latency (1 worker) with a goal and
// with anchors from the same run.
func (r *Report) latencyTarget(name, workload, system string, goal time.Duration, anchors ...anchorRef) Target {
	t := Target{Name: name + " (p50, 1 worker)", Unit: "ns", Goal: "<= " + fmtDur(goal)}
	cell := r.cell(workload, system, 1)
	var p50 time.Duration
	if cell != nil && cell.Latency != nil {
		p50 = cell.Latency.P50
		t.Value, t.Display, t.Met = float64(p50), fmtDur(p50), met(p50 <= goal)
	}
	var parts []string
	for _, a := range anchors {
		ac := r.cell(a.workload, a.system, 1)
		if ac == nil || ac.Latency == nil {
			continue
		}
		s := fmt.Sprintf("%s %s", a.system, fmtDur(ac.Latency.P50))
		if p50 > 0 && ac.Latency.P50 > 0 {
			s += ", ratio " + fmtRatio(float64(p50)/float64(ac.Latency.P50))
		}
		parts = append(parts, s)
	}
	t.Anchor = strings.Join(parts, "; ")
	return t
}

// scaling is throughput with 2 workers over throughput with 1, or 0.
func (r *Report) scaling(workload, system string) float64 {
	few, many := r.cell(workload, system, scalingFew), r.cell(workload, system, scalingMany)
	if few == nil || many == nil || few.Throughput == nil || many.Throughput == nil || few.Throughput.PerSec <= 0 {
		return 0
	}
	return many.Throughput.PerSec / few.Throughput.PerSec
}

// scalingTarget: wasmpool's 2-worker/1-worker throughput ratio must be at
// least the go pool's own ratio on this machine, less 0.1.
func (r *Report) scalingTarget(workload, system string) Target {
	t := Target{Name: fmt.Sprintf("%s: %s throughput, 2 workers / 1 worker", strings.TrimPrefix(system, "wasmpool "),
		or(r.labelOf(workload), workload)), Unit: "ratio", Goal: fmt.Sprintf(">= go pool's - %.1f", goalScalingSlack)}
	s, native := r.scaling(workload, system), r.scaling(workload, sysNative)
	if native > 0 {
		t.Goal = fmt.Sprintf(">= %.2f", native-goalScalingSlack)
		t.Anchor = fmt.Sprintf("go pool %.2f", native)
	}
	if s > 0 && native > 0 {
		t.Value, t.Display, t.Met = s, fmt.Sprintf("%.2f", s), met(s >= native-goalScalingSlack)
	}
	return t
}

func (r *Report) labelOf(workload string) string {
	_, labels := r.sortedCells()
	return labels[workload]
}

func (r *Report) coldStartTarget(c Config) Target {
	t := Target{Name: "CLI cold start: wasmpool run of a Go guest, cache warm (median)", Unit: "ns", Goal: "<= " + fmtDur(goalColdStart)}
	cs := r.ColdStart
	if cs == nil {
		if c.ColdRuns == 0 {
			t.Anchor = "skipped (no runs asked for)"
		}
		return t
	}
	t.Name = fmt.Sprintf("CLI cold start: %s, cache warm (median of %d)", cs.Command, cs.Runs)
	t.Value, t.Display, t.Met = float64(cs.Wasmpool), fmtDur(cs.Wasmpool), met(cs.Wasmpool <= goalColdStart)
	t.Anchor = fmt.Sprintf("bare wazero from its disk cache %s, ratio %s", fmtDur(cs.Bare),
		fmtRatio(float64(cs.Wasmpool)/float64(cs.Bare)))
	return t
}

func (r *Report) rssTarget(c Config) Target {
	tasks := c.RSSTasks
	if tasks[0] == 0 {
		tasks = Default().RSSTasks
	}
	t := Target{Name: fmt.Sprintf("RSS after %d isolated tasks vs after %d", tasks[1], tasks[0]),
		Unit: "growth", Goal: fmt.Sprintf("<= +%.0f%%", goalRSSGrowth*100)}
	rss := r.RSS
	if rss == nil || rss.KB[0] <= 0 {
		if c.RSSTasks[0] == 0 {
			t.Anchor = "skipped (no task counts asked for)"
		}
		return t
	}
	g := rss.Growth()
	t.Value, t.Display, t.Met = g, fmt.Sprintf("%+.1f%%", g*100), met(g <= goalRSSGrowth)
	t.Anchor = fmt.Sprintf("VmRSS %.1f MiB -> %.1f MiB (fresh child process, read after a GC)", float64(rss.KB[0])/1024, float64(rss.KB[1])/1024)
	return t
}

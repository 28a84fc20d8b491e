package benchcmp

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/wasmpool/wasmpool/internal/testmod"
)

// Report is one run's figures: what WriteTable prints and WriteJSON saves.
type Report struct {
	Meta      Meta       `json:"meta"`
	Cells     []Cell     `json:"cells"`
	ColdStart *ColdStart `json:"cold_start,omitempty"`
	RSS       *RSS       `json:"rss,omitempty"`
	// Issue 12's measures (interrupt.go).
	Interruption []KernelCost `json:"interruption,omitempty"`
	StopLatency  *StopLatency `json:"stop_latency,omitempty"`
	CLIRun       *CLIRun      `json:"cli_run,omitempty"`
	// Issue 15's I/O-bound measure (fetch.go).
	Fetch *FetchCost `json:"fetch,omitempty"`
	// Issue 16's (cluster.go).
	Cluster []ClusterRow `json:"cluster,omitempty"`
	Targets []Target     `json:"targets"`
	Notes   []string     `json:"notes,omitempty"`
}

// Meta says where and how the figures were taken.
type Meta struct {
	Time       string        `json:"time"`
	Commit     string        `json:"commit,omitempty"`
	Go         string        `json:"go"`
	Platform   string        `json:"platform"`
	CPU        string        `json:"cpu,omitempty"`
	NumCPU     int           `json:"num_cpu"`
	GOMAXPROCS int           `json:"gomaxprocs"`
	LoadAvg    string        `json:"loadavg,omitempty"` // at the start, from /proc/loadavg
	Wazero     string        `json:"wazero,omitempty"`
	Python     string        `json:"python,omitempty"`
	Budget     time.Duration `json:"budget_ns"`
	FibN       int           `json:"fib_n"`
	FibNative  time.Duration `json:"fib_native_ns"` // one fib(FibN) task on the go pool, 1 worker, median
	SHASize    int           `json:"sha_size"`
	Timeout    time.Duration `json:"timeout_ns"`
}

// Cell is one executor running one workload with one worker count.
type Cell struct {
	Workload   string      `json:"workload"`
	System     string      `json:"system"`
	Workers    int         `json:"workers"`
	Latency    *Latency    `json:"latency,omitempty"`
	Throughput *Throughput `json:"throughput,omitempty"`
	Ratios     Ratios      `json:"ratios"`
}

// Ratios compare a cell with the go pool's (the floor) and Python's cell of
// the same workload and worker count: this cell's figure divided by theirs.
type Ratios struct {
	P50VsGo        float64 `json:"p50_vs_go,omitempty"`
	P50VsPython    float64 `json:"p50_vs_python,omitempty"`
	TasksVsGo      float64 `json:"tasks_per_s_vs_go,omitempty"`
	TasksVsPython  float64 `json:"tasks_per_s_vs_python,omitempty"`
	PythonExecutor string  `json:"python_executor,omitempty"`
}

func newMeta(c Config) Meta {
	m := Meta{
		Time: time.Now().Format(time.RFC3339), Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH,
		NumCPU: runtime.NumCPU(), GOMAXPROCS: gomaxprocs(), Budget: c.Budget, FibN: c.FibN, SHASize: c.SHASize, Timeout: c.Timeout,
		CPU: cpuModel(), LoadAvg: loadAvg(), Commit: gitCommit(),
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/tetratelabs/wazero" {
				m.Wazero = d.Version
			}
		}
	}
	return m
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

// gitCommit names the commit measured, "+dirty" with local changes: the
// JSON is for tracking figures across commits.
func gitCommit() string {
	root, err := testmod.Root()
	if err != nil {
		return ""
	}
	out, err := exec.Command("git", "-C", root, "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		return ""
	}
	commit := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "-C", root, "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
		commit += "+dirty"
	}
	return commit
}

func (r *Report) cell(workload, system string, workers int) *Cell {
	for i := range r.Cells {
		c := &r.Cells[i]
		if c.Workload == workload && c.System == system && c.Workers == workers {
			return c
		}
	}
	return nil
}

// finish computes the ratios and the targets.
func (r *Report) finish(c Config, wls []workload) {
	floors := map[string]string{}
	for _, wl := range wls {
		floors[wl.key] = wl.key
		if wl.floor != "" {
			floors[wl.key] = wl.floor
		}
	}
	for i := range r.Cells {
		cell := &r.Cells[i]
		if floor := r.cell(floors[cell.Workload], sysNative, cell.Workers); floor != nil && floor != cell {
			cell.Ratios.P50VsGo = latencyRatio(cell, floor)
			cell.Ratios.TasksVsGo = throughputRatio(cell, floor)
		}
		if twin := pythonTwin[cell.System]; twin != "" {
			if py := r.cell(cell.Workload, twin, cell.Workers); py != nil {
				cell.Ratios.PythonExecutor = twin
				cell.Ratios.P50VsPython = latencyRatio(cell, py)
				cell.Ratios.TasksVsPython = throughputRatio(cell, py)
			}
		}
	}
	if fc := r.cell("fib", sysNative, 1); fc != nil && fc.Latency != nil {
		r.Meta.FibNative = fc.Latency.P50
	}
	r.Targets = r.targets(c)
}

func latencyRatio(a, b *Cell) float64 {
	if a.Latency == nil || b.Latency == nil || b.Latency.P50 <= 0 {
		return 0
	}
	return float64(a.Latency.P50) / float64(b.Latency.P50)
}

func throughputRatio(a, b *Cell) float64 {
	if a.Throughput == nil || b.Throughput == nil || b.Throughput.PerSec <= 0 {
		return 0
	}
	return a.Throughput.PerSec / b.Throughput.PerSec
}

// WriteJSON saves the report, creating the file's directory if needed.
func (r *Report) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// WriteTable prints the report: the legend, one table of every cell, the
// targets and the notes.
func (r *Report) WriteTable(w io.Writer) {
	m := r.Meta
	fmt.Fprintf(w, "wasmpool benchmark, %s", m.Time)
	if m.Commit != "" {
		fmt.Fprintf(w, ", commit %s", m.Commit)
	}
	fmt.Fprintf(w, "\n%s %s, %d CPUs (GOMAXPROCS %d)", m.Go, m.Platform, m.NumCPU, m.GOMAXPROCS)
	if m.CPU != "" {
		fmt.Fprintf(w, ", %s", m.CPU)
	}
	if m.LoadAvg != "" {
		fmt.Fprintf(w, ", load average %s at the start", m.LoadAvg)
	}
	fmt.Fprintf(w, "\nwazero %s, Python %s, %s per measure\n\n", or(m.Wazero, "?"), or(m.Python, "not measured"), m.Budget)
	fmt.Fprint(w, `p50, p99   latency: one task at a time, the round trip Submit -> Result
           (Python: submit -> result()), median and 99th percentile; warm-up excluded
tasks/s    throughput: batches of tasks submitted at once, then all awaited
/go        this figure divided by the go pool's (plain Go, same task, same
           workers): the physical floor. Latency: how many times slower;
           tasks/s: what fraction of the floor's throughput
/py        the same against Python: threads, the go pool and wazero warm vs
           ThreadPoolExecutor; processes and wazero bare vs ProcessPoolExecutor
wazero     the anchors, wazero alone with its default settings (no pool, no
           limits, no timeout), 1 worker, latency only. bare: instantiate,
           call, close per task; warm: one instance, called again and again
timeout    every task has a timeout enforced (wasmpool TaskTimeout,
           context.WithTimeout checked per task, future.result(timeout))
isolated   a fresh instance per task (wasmpool processes; wazero bare:
           instantiate, call, close; Python's ProcessPoolExecutor reuses its
           worker processes, so isolates less)
`)
	if m.FibNative > 0 {
		fmt.Fprintf(w, "fib(%d)    one task takes %s in plain Go here (go pool, 1 worker, median)\n", m.FibN, fmtDur(m.FibNative))
	}
	fmt.Fprintln(w)

	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "workload\texecutor\tw\tp50\tp99\t/go\t/py\ttasks/s\t/go\t/py\t")
	last := ""
	cells, labels := r.sortedCells()
	for _, cell := range cells {
		if last != "" && cell.Workload != last {
			fmt.Fprintln(tw, "\t\t\t\t\t\t\t\t\t\t")
		}
		label := ""
		if cell.Workload != last {
			label = or(labels[cell.Workload], cell.Workload)
		}
		last = cell.Workload
		p50, p99, tps := "-", "-", "-"
		if l := cell.Latency; l != nil {
			p50, p99 = fmtDur(l.P50), fmtDur(l.P99)
		}
		if t := cell.Throughput; t != nil {
			tps = fmtRate(t.PerSec)
		}
		rt := cell.Ratios
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", label, cell.System, cell.Workers, p50, p99,
			fmtRatio(rt.P50VsGo), fmtRatio(rt.P50VsPython), tps, fmtRatio(rt.TasksVsGo), fmtRatio(rt.TasksVsPython))
	}
	_ = tw.Flush()

	r.writeInterruption(w)
	r.writeFetch(w)
	r.writeCluster(w)

	fmt.Fprintln(w, "\ntargets (issues 4, 12, 15 and 16), from this run:")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  measure\tmeasured\ttarget\tmet\tanchor (same run)\t")
	for _, t := range r.Targets {
		met := "not measured"
		if t.Met != nil {
			met = map[bool]string{true: "yes", false: "NO"}[*t.Met]
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t\n", t.Name, or(t.Display, "-"), t.Goal, met, t.Anchor)
	}
	_ = tw.Flush()
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
}

// sortedCells orders the cells by workload (as listed), worker count, then
// executor: go, wasmpool, wazero, Python. It also returns the workloads'
// table labels.
func (r *Report) sortedCells() ([]Cell, map[string]string) {
	order, labels := map[string]int{}, map[string]string{}
	for i, wl := range workloads(Config{FibN: r.Meta.FibN, SHASize: r.Meta.SHASize}) {
		order[wl.key], labels[wl.key] = i, wl.label
	}
	sysOrder := map[string]int{sysNative: 0, sysThreads: 1, sysProcesses: 2, sysPreinit: 2, sysSubprocess: 2, sysBare: 3, sysBareWarm: 3, sysPyThread: 4, sysPyProcess: 5}
	cells := slices.Clone(r.Cells)
	slices.SortStableFunc(cells, func(a, b Cell) int {
		return cmp.Or(cmp.Compare(order[a.Workload], order[b.Workload]), cmp.Compare(a.Workers, b.Workers),
			cmp.Compare(sysOrder[a.System], sysOrder[b.System]))
	})
	return cells, labels
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func fmtDur(d time.Duration) string {
	switch {
	case d < time.Microsecond:
		return fmt.Sprintf("%dns", d.Nanoseconds())
	case d < 10*time.Microsecond:
		return fmt.Sprintf("%.2fµs", float64(d)/1e3)
	case d < time.Millisecond:
		return fmt.Sprintf("%.1fµs", float64(d)/1e3)
	case d < time.Second:
		return fmt.Sprintf("%.2fms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}

func fmtRate(r float64) string {
	switch {
	case r >= 1e6:
		return fmt.Sprintf("%.2fM", r/1e6)
	case r >= 1e4:
		return fmt.Sprintf("%.1fk", r/1e3)
	case r >= 100:
		return fmt.Sprintf("%.0f", r)
	}
	return fmt.Sprintf("%.1f", r)
}

func fmtRatio(v float64) string {
	switch {
	case v == 0:
		return ""
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	case v >= 0.01:
		return fmt.Sprintf("%.2f", v)
	}
	return "<0.01"
}

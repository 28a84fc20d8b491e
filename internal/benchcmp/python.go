package benchcmp

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// benchPy measures Python's executors; see its docstring.
//
//go:embed bench.py
var benchPy []byte

type pyConfig struct {
	BudgetNS   int64    `json:"budget_ns"`
	MinSamples int      `json:"min_samples"`
	MaxSamples int      `json:"max_samples"`
	FibN       int      `json:"fib_n"`
	SHASize    int      `json:"sha_size"`
	TimeoutS   float64  `json:"timeout_s"`
	Cells      []pyCell `json:"cells"`
}

type pyCell struct {
	Workload string `json:"workload"`
	Label    string `json:"label"`
	System   string `json:"system"`
	Task     string `json:"task"`
	Kind     string `json:"kind"` // thread or process
	Workers  int    `json:"workers"`
	Timeout  bool   `json:"timeout"`
	Want     string `json:"want"`
}

type pyOutput struct {
	Python string `json:"python"`
	Cells  []Cell `json:"cells"`
}

// runPython measures the Python cells with bench.py, if python3 is there.
// Python is a comparison, not the subject: when it is missing or fails, a
// note says so and the run goes on.
func runPython(ctx context.Context, c Config, wls []workload, rep *Report, prog *progress) {
	py, err := findPython(c)
	if err != nil {
		rep.Notes = append(rep.Notes, "Python not measured: "+err.Error()+" (its columns are empty)")
		return
	}
	pc := pyConfig{
		BudgetNS: c.Budget.Nanoseconds(), MinSamples: c.MinSamples, MaxSamples: 200_000,
		FibN: c.FibN, SHASize: c.SHASize, TimeoutS: c.Timeout.Seconds(),
	}
	for _, wl := range wls {
		if wl.py == "" {
			continue
		}
		want, _ := wl.native(wl.input)
		for _, w := range c.Workers {
			for _, sys := range wl.systems {
				exe := map[string]string{sysPyThread: "thread", sysPyProcess: "process"}[sys]
				if exe == "" {
					continue
				}
				pc.Cells = append(pc.Cells, pyCell{Workload: wl.key, Label: wl.label, System: sys, Task: wl.py,
					Kind: exe, Workers: w, Timeout: wl.timeout, Want: string(want)})
			}
		}
	}
	out, err := execPython(ctx, py, pc, prog)
	if err != nil {
		rep.Notes = append(rep.Notes, "Python not measured: "+err.Error())
		return
	}
	rep.Meta.Python = out.Python
	rep.Cells = append(rep.Cells, out.Cells...)
}

// findPython is the python3 to measure, or why there is none.
func findPython(c Config) (string, error) {
	switch c.Python {
	case "none":
		return "", errors.New("disabled (-python none)")
	case "":
		py, err := exec.LookPath("python3")
		if err != nil {
			return "", errors.New("python3 is not on PATH")
		}
		return py, nil
	}
	return c.Python, nil
}

func execPython(ctx context.Context, py string, pc pyConfig, prog *progress) (*pyOutput, error) {
	dir, err := os.MkdirTemp("", "wasmpool-bench-py-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	script := filepath.Join(dir, "bench.py")
	if err := os.WriteFile(script, benchPy, 0o644); err != nil {
		return nil, err
	}
	in, err := json.Marshal(pc)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, py, script)
	cmd.Stdin = bytes.NewReader(in)
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	var errLines []string
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "progress: "); ok {
			prog.say("python " + rest)
			continue
		}
		errLines = append(errLines, line)
	}
	if err := cmd.Wait(); err != nil {
		return nil, fmt.Errorf("%s %s: %v: %s", py, filepath.Base(script), err, lastLines(errLines, 3))
	}
	var out pyOutput
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		return nil, fmt.Errorf("reading bench.py's figures: %w", err)
	}
	return &out, nil
}

func lastLines(lines []string, n int) string {
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " / ")
}

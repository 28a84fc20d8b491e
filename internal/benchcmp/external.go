package benchcmp

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/future"
	"github.com/wasmpool/wasmpool/internal/testmod"
	"github.com/wasmpool/wasmpool/pool"
)

// ColdStart is the CLI's start-up: `wasmpool run` of a Go guest, each run a
// new process, with the compiled-code cache already warm; against the anchor,
// a minimal Go program doing the same with wazero alone.
type ColdStart struct {
	Command  string        `json:"command"`
	Runs     int           `json:"runs"`
	Wasmpool time.Duration `json:"wasmpool_median_ns"`
	Bare     time.Duration `json:"bare_wazero_median_ns"`
}

// coldInput is the task's input in the cold-start runs: the task is start-up,
// not hashing.
const coldInput = "hello\n"

func measureColdStart(ctx context.Context, c Config, module string, prog *progress) (*ColdStart, error) {
	dir, err := os.MkdirTemp("", "wasmpool-bench-cold-")
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
	anchor := filepath.Join(dir, "coldstart")
	if err := goBuild(ctx, anchor, "./internal/benchcmp/cmd/coldstart"); err != nil {
		return nil, err
	}
	input := filepath.Join(dir, "input.txt")
	if err := os.WriteFile(input, []byte(coldInput), 0o644); err != nil {
		return nil, err
	}
	want, _ := nativeSHA256([]byte(coldInput))
	cmds := [2][]string{
		{cli, "run", module, "--func", "sha256", "--input", input, "--cache-dir", filepath.Join(dir, "wasmpool-cache")},
		{anchor, "-cache", filepath.Join(dir, "wazero-cache"), "-func", "sha256", "-input", input, module},
	}
	// The first run of each fills its cache and is not counted.
	for _, args := range cmds {
		if _, err := timeCommand(ctx, args, want); err != nil {
			return nil, err
		}
	}
	times := [2][]time.Duration{}
	for i := range c.ColdRuns {
		prog.say(fmt.Sprintf("cold start: run %d/%d", i+1, c.ColdRuns))
		// Alternating spreads a passing load over both commands alike.
		for k, args := range cmds {
			d, err := timeCommand(ctx, args, want)
			if err != nil {
				return nil, err
			}
			times[k] = append(times[k], d)
		}
	}
	return &ColdStart{
		Command:  fmt.Sprintf("wasmpool run %s --func sha256 --input FILE", filepath.Base(module)),
		Runs:     c.ColdRuns,
		Wasmpool: median(times[0]),
		Bare:     median(times[1]),
	}, nil
}

// timeCommand runs args to completion and returns how long it took, from
// start to exit; its stdout must be want.
func timeCommand(ctx context.Context, args []string, want []byte) (time.Duration, error) {
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("%s: %v: %s", filepath.Base(args[0]), err, strings.TrimSpace(errb.String()))
	}
	if got := bytes.TrimSpace(out.Bytes()); !bytes.Equal(got, want) {
		return 0, fmt.Errorf("%s printed %q, want %q", filepath.Base(args[0]), got, want)
	}
	return d, nil
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return percentile(s, 50)
}

// goBuild builds the package (relative to the repository root) into out.
func goBuild(ctx context.Context, out, pkg string) error {
	root, err := testmod.Root()
	if err != nil {
		return err
	}
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		if goBin, err = exec.LookPath("go"); err != nil {
			return errors.New("no go command to build the binaries with")
		}
	}
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", out, pkg)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return nil
}

// RSS is the resident set of a process that runs isolated no-op tasks on a
// Processes pool, read from /proc/self/status after Tasks[0] and Tasks[1]
// tasks: memory that grows with the task count is a leak.
type RSS struct {
	Tasks [2]int   `json:"tasks"`
	KB    [2]int64 `json:"vmrss_kb"`
}

// Growth is the relative growth of the RSS from the first reading to the
// second (0.05 is +5%).
func (r *RSS) Growth() float64 { return float64(r.KB[1])/float64(r.KB[0]) - 1 }

// childEnv marks a process as the harness's RSS child; its value is the
// job, as JSON.
const childEnv = "WASMPOOL_BENCHCMP_CHILD"

type rssJob struct {
	Module string `json:"module"`
	Cache  string `json:"cache"`
	Tasks  [2]int `json:"tasks"`
}

// RunChildIfAsked runs this process as the harness's RSS child and exits,
// if it was started as one; otherwise it returns at once. A main (or a
// TestMain) that runs the harness calls it first: the harness measures RSS
// in a fresh copy of its own executable, so that nothing measured before
// (and no other executor) weighs on it.
func RunChildIfAsked() {
	v, ok := os.LookupEnv(childEnv)
	if !ok {
		return
	}
	var job rssJob
	err := json.Unmarshal([]byte(v), &job)
	var rss *RSS
	if err == nil {
		rss, err = rssChild(job)
	}
	if err == nil {
		err = json.NewEncoder(os.Stdout).Encode(rss)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "rss child:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func measureRSS(ctx context.Context, module, cacheDir string, tasks [2]int) (*RSS, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	job, err := json.Marshal(rssJob{Module: module, Cache: cacheDir, Tasks: tasks})
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(os.Environ(), childEnv+"="+string(job))
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%v: %s", err, strings.TrimSpace(errb.String()))
	}
	var rss RSS
	if err := json.Unmarshal(out.Bytes(), &rss); err != nil {
		return nil, fmt.Errorf("reading the child's figures %q: %w", out.String(), err)
	}
	return &rss, nil
}

func rssChild(job rssJob) (*RSS, error) {
	if job.Tasks[0] <= 0 || job.Tasks[1] < job.Tasks[0] {
		return nil, fmt.Errorf("bad task counts %v", job.Tasks)
	}
	ctx := context.Background()
	e, err := engine.New(ctx, engine.Config{CacheDir: job.Cache})
	if err != nil {
		return nil, err
	}
	defer e.Close(ctx)
	m, err := e.CompileFile(ctx, job.Module)
	if err != nil {
		return nil, err
	}
	p, err := pool.New(e, pool.Config{Mode: pool.Processes})
	if err != nil {
		return nil, err
	}
	defer p.Close()
	task := engine.Task{Module: m, Func: "noop"}
	run := func(n int) error {
		fs := make([]*future.Future[engine.Result], 0, 256)
		for done := 0; done < n; done += len(fs) {
			fs = fs[:0]
			for range min(256, n-done) {
				fs = append(fs, p.Submit(ctx, task))
			}
			for _, f := range fs {
				if err := f.Err(ctx); err != nil {
					return err
				}
			}
		}
		return nil
	}
	rss := &RSS{Tasks: job.Tasks}
	for i, n := range []int{job.Tasks[0], job.Tasks[1] - job.Tasks[0]} {
		if err := run(n); err != nil {
			return nil, err
		}
		// What a leak would be is what survives a collection: read RSS once
		// the garbage of the tasks so far is collected and its memory given
		// back, not at whatever point of a GC cycle the count happens to end
		// (read that way, a 14 MiB process swung by 2 MiB between readings,
		// with no trend over 1M tasks).
		runtime.GC()
		debug.FreeOSMemory()
		if rss.KB[i], err = vmRSS(); err != nil {
			return nil, err
		}
	}
	return rss, nil
}

// vmRSS reads this process's resident set size, in KiB, from Linux's /proc.
func vmRSS() (int64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("no /proc/self/status (RSS is read on Linux only): %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		}
	}
	return 0, errors.New("no VmRSS line in /proc/self/status")
}

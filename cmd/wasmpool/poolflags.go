package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"
	"unicode/utf8"

	"github.com/spf13/pflag"

	"github.com/wasmpool/wasmpool/cluster"
	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/future"
	"github.com/wasmpool/wasmpool/pool"
)

// poolFlags are the flags of the commands that run many tasks (map, batch).
type poolFlags struct {
	engineFlags
	isolationFlag
	mode      string
	workers   int
	unordered bool
	timeout   time.Duration
	fuel      uint64
	progress  string
	failFast  bool
	allowHostFlag
	clusterFlags
}

func (f *poolFlags) add(fs *pflag.FlagSet) {
	fs.StringVar(&f.mode, "mode", "thread", "worker kind: thread (warm instances reused) or process (a fresh instance per task)")
	fs.IntVar(&f.workers, "workers", 0, "number of workers (default: one per CPU)")
	fs.BoolVar(&f.unordered, "unordered", false, "print results as they complete, not in input order")
	fs.DurationVar(&f.timeout, "timeout", 0, "stop each task after this long, e.g. 500ms, 2s (default none)")
	fs.Uint64Var(&f.fuel, "fuel", 0, "stop each task after this many WebAssembly instructions, the same on every machine (default none)")
	fs.StringVar(&f.progress, "progress", progressAuto, "progress line on stderr: auto (when a terminal), always or never")
	fs.BoolVar(&f.failFast, "fail-fast", false, "stop at the first failure, cancel the rest, exit with its status")
	f.engineFlags.add(fs)
	f.isolationFlag.add(fs)
	f.allowHostFlag.add(fs, allowHostUsage)
	f.clusterFlags.add(fs)
}

// poolConfig checks the flags and returns the pool's configuration.
func (f *poolFlags) poolConfig() (pool.Config, error) {
	mode, err := pool.ParseMode(f.mode)
	if err != nil {
		return pool.Config{}, usagef("--mode: %v", err)
	}
	if f.workers < 0 {
		return pool.Config{}, usagef("--workers %d: want 1 or more (0: one per CPU)", f.workers)
	}
	if err := checkTimeout(f.timeout); err != nil {
		return pool.Config{}, err
	}
	if err := f.clusterFlags.check(); err != nil {
		return pool.Config{}, err
	}
	if err := f.allowHostFlag.check(); err != nil {
		return pool.Config{}, err
	}
	f.engineFlags.capabilities = clientCapabilities()
	if f.nats != "" && f.isolation != isolationInProcess {
		return pool.Config{}, usagef("--isolation is for the workers that run the tasks: with --nats, give it to 'wasmpool worker'")
	}
	cfg := pool.Config{Mode: mode, Workers: f.workers, TaskTimeout: f.timeout, TaskFuel: f.fuel}
	if err := f.isolationFlag.apply(&cfg); err != nil {
		return pool.Config{}, err
	}
	return cfg, nil
}

// isolationInProcess is --isolation's default.
const isolationInProcess = "in-process"

// isolationFlag is --isolation, of run, map and batch.
type isolationFlag struct {
	isolation string
}

func (f *isolationFlag) add(fs *pflag.FlagSet) {
	fs.StringVar(&f.isolation, "isolation", isolationInProcess, "where guest code runs: in-process, or subprocess (each worker "+
		"in a wasmpool worker process of its own: a crash there fails only its task; \"process\" is an alias)")
}

// apply sets the pool's isolation; worker processes are this wasmpool,
// started as "wasmpool worker --child".
func (f *isolationFlag) apply(cfg *pool.Config) error {
	iso, err := pool.ParseIsolation(f.isolation)
	if err != nil {
		return usagef("--isolation: %v", err)
	}
	cfg.Isolation = iso
	if iso == pool.Subprocess {
		self, err := os.Executable()
		if err != nil {
			return fmt.Errorf("--isolation subprocess: finding the wasmpool program to start as worker processes: %w", err)
		}
		cfg.WorkerCommand = []string{self, "worker", "--child"}
	}
	return nil
}

// session is an engine and what runs the tasks: a pool on the engine, or a
// cluster (see clusterflags.go). The engine compiles the modules either way.
type session struct {
	e      *engine.Engine
	x      pool.Executor
	window int
	after  []func() // closed after the executor, in order
	// warnNoWorker, when set (--nats), is where to say that no worker has
	// taken the first task noWorkerAfter after it was submitted.
	warnNoWorker io.Writer
	noWorker     *time.Timer
	// cx is the cluster's executor, and taskOpts the options of every task
	// submitted to it, for tasks with requirements of their own.
	cx       *cluster.Executor
	taskOpts cluster.TaskOptions
	job      *cluster.Executor // with --job: the executor of the job
}

func (s *session) close(ctx context.Context) {
	if s.noWorker != nil {
		s.noWorker.Stop()
	}
	if s.x != nil {
		_ = s.x.Close()
	}
	for _, f := range s.after {
		f()
	}
	_ = s.e.Close(context.WithoutCancel(ctx))
}

func (s *session) options(f *poolFlags, prog *progress) runOptions {
	opts := runOptions{window: s.window, unordered: f.unordered, failFast: f.failFast}
	if s.cx != nil {
		opts.submitCluster, opts.keyed = s.submitCluster, s.job != nil
	}
	if s.warnNoWorker != nil {
		notices := make(chan string, 1)
		opts.notices = notices
		opts.notify = func(n string) { printLine(prog, s.warnNoWorker, n) }
		opts.submitted = func(fut *future.Future[engine.Result]) {
			if s.noWorker != nil {
				return // the first task's is the one that tells
			}
			s.noWorker = time.AfterFunc(noWorkerAfter, func() {
				if fut.State() == future.Pending {
					notices <- fmt.Sprintf("wasmpool: no worker has taken a task in %v: the tasks wait in the "+
						"queue until one does (start one with 'wasmpool worker --nats URL')", noWorkerAfter)
				}
			})
		}
	}
	return opts
}

// startPool creates the pool on e, or connects to the cluster the flags
// name.
func (s *session) startPool(ctx context.Context, f *poolFlags, cfg pool.Config, stderr io.Writer) error {
	if f.clustered() {
		return s.startCluster(ctx, f, cfg, stderr)
	}
	p, err := pool.New(s.e, cfg)
	if err != nil {
		return usagef("%v", err)
	}
	s.x, s.window = p, p.Window()
	return nil
}

// payload is output as JSON shows it: text when it is valid UTF-8, base64
// otherwise (DESIGN.md, result line).
type payload struct {
	Text   *string `json:"output,omitempty"`
	Base64 string  `json:"output_base64,omitempty"`
}

func newPayload(b []byte) payload {
	if utf8.Valid(b) {
		s := string(b)
		return payload{Text: &s}
	}
	return payload{Base64: base64.StdEncoding.EncodeToString(b)}
}

// millis is a duration as fractional milliseconds, to the microsecond.
func millis(d time.Duration) float64 {
	return float64(d.Microseconds()) / 1000
}

// jsonLine encodes v as one line of JSON, "<" and "&" left as they are.
func jsonLine(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return []byte(fmt.Sprintf("{\"error\": %q}\n", err.Error()))
	}
	return b.Bytes()
}

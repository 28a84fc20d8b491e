package benchcmp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/future"
	"github.com/wasmpool/wasmpool/internal/benchcmp/bare"
	"github.com/wasmpool/wasmpool/pool"
)

// The work of each task, in plain Go: what the guest modules do, the same
// way (parse the input, compute, format the output).
func nativeNoop([]byte) ([]byte, error) { return nil, nil }

func nativeFib(in []byte) ([]byte, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(string(in)), 10, 64)
	if err != nil {
		return nil, err
	}
	return strconv.AppendUint(nil, fib(n), 10), nil
}

func fib(n uint64) uint64 {
	if n < 2 {
		return n
	}
	return fib(n-1) + fib(n-2)
}

func nativeSHA256(in []byte) ([]byte, error) {
	s := sha256.Sum256(in)
	return []byte(hex.EncodeToString(s[:])), nil
}

// nativePool is the physical floor: a plain goroutine pool, as a Go
// programmer would write one, with a channel per task for its result.
type nativePool struct {
	jobs    chan *nativeJob
	wg      sync.WaitGroup
	fn      func([]byte) ([]byte, error)
	in      []byte
	want    []byte
	timeout time.Duration
}

type nativeJob struct {
	out  []byte
	err  error
	done chan struct{}
}

func newNativePool(workers int, fn func([]byte) ([]byte, error), in, want []byte, timeout time.Duration) *nativePool {
	p := &nativePool{jobs: make(chan *nativeJob, 64*workers), fn: fn, in: in, want: want, timeout: timeout}
	for range workers {
		p.wg.Go(func() {
			for j := range p.jobs {
				j.out, j.err = p.run()
				close(j.done)
			}
		})
	}
	return p
}

// run is one task. With a timeout it pays what a Go task must to honour
// one: a context with a timer, checked when the task ends. Plain Go cannot
// stop a computation that does not check (wasmpool can).
func (p *nativePool) run() ([]byte, error) {
	if p.timeout <= 0 {
		return p.fn(p.in)
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
	defer cancel()
	out, err := p.fn(p.in)
	if err == nil {
		err = ctx.Err()
	}
	return out, err
}

func (p *nativePool) submit() *nativeJob {
	j := &nativeJob{done: make(chan struct{})}
	p.jobs <- j
	return j
}

func (p *nativePool) wait(j *nativeJob) error {
	<-j.done
	if j.err != nil {
		return j.err
	}
	if !bytes.Equal(j.out, p.want) {
		return fmt.Errorf("native task output %q, want %q", j.out, p.want)
	}
	return nil
}

func (p *nativePool) one() error { return p.wait(p.submit()) }

func (p *nativePool) batch(n int) error {
	js := make([]*nativeJob, n)
	for i := range js {
		js[i] = p.submit()
	}
	for _, j := range js {
		if err := p.wait(j); err != nil {
			return err
		}
	}
	return nil
}

func (p *nativePool) close() {
	close(p.jobs)
	p.wg.Wait()
}

// poolRunner runs the workload's task on a wasmpool pool.
type poolRunner struct {
	ctx  context.Context
	p    *pool.Pool
	task engine.Task
	want []byte
}

func newPoolRunner(ctx context.Context, e *engine.Engine, cfg pool.Config, task engine.Task, want []byte, timeout time.Duration) (*poolRunner, error) {
	cfg.TaskTimeout = timeout
	p, err := pool.New(e, cfg)
	if err != nil {
		return nil, err
	}
	return &poolRunner{ctx: ctx, p: p, task: task, want: want}, nil
}

func (r *poolRunner) wait(f *future.Future[engine.Result]) error {
	res, err := f.Result(r.ctx)
	if err != nil {
		return err
	}
	if !bytes.Equal(res.Output, r.want) {
		return fmt.Errorf("%s output %q, want %q", r.task.Func, res.Output, r.want)
	}
	return nil
}

func (r *poolRunner) one() error { return r.wait(r.p.Submit(r.ctx, r.task)) }

func (r *poolRunner) batch(n int) error {
	fs := make([]*future.Future[engine.Result], n)
	for i := range fs {
		fs[i] = r.p.Submit(r.ctx, r.task)
	}
	for _, f := range fs {
		if err := r.wait(f); err != nil {
			return err
		}
	}
	return nil
}

func (r *poolRunner) close() { _ = r.p.Close() }

// bareRunner is the anchor: wazero alone instantiates, calls and closes the
// module, one task at a time on the calling goroutine.
type bareRunner struct {
	ctx   context.Context
	rt    *bare.Runtime
	fn    string
	input []byte
	want  []byte
}

func newBareRunner(ctx context.Context, cache wazero.CompilationCache, wasm []byte, fn string, input, want []byte) (*bareRunner, error) {
	rt, err := bare.New(ctx, wasm, cache)
	if err != nil {
		return nil, err
	}
	return &bareRunner{ctx: ctx, rt: rt, fn: fn, input: input, want: want}, nil
}

func (r *bareRunner) one() error {
	out, err := r.rt.Run(r.ctx, r.fn, r.input)
	if err != nil {
		return err
	}
	if !bytes.Equal(out, r.want) {
		return fmt.Errorf("bare %s output %q, want %q", r.fn, out, r.want)
	}
	return nil
}

// bareWarmRunner is the anchor of a warm call: wazero alone calls the task
// on one instance, again and again, with its default settings.
type bareWarmRunner struct {
	bareRunner
	mod api.Module
}

func newBareWarmRunner(ctx context.Context, cache wazero.CompilationCache, wasm []byte, fn string, input, want []byte) (*bareWarmRunner, error) {
	r, err := newBareRunner(ctx, cache, wasm, fn, input, want)
	if err != nil {
		return nil, err
	}
	mod, err := r.rt.Instantiate(ctx)
	if err != nil {
		r.close()
		return nil, err
	}
	return &bareWarmRunner{bareRunner: *r, mod: mod}, nil
}

func (r *bareWarmRunner) one() error {
	out, err := bare.Call(r.ctx, r.mod, r.fn, r.input)
	if err != nil {
		return err
	}
	if !bytes.Equal(out, r.want) {
		return fmt.Errorf("bare %s output %q, want %q", r.fn, out, r.want)
	}
	return nil
}

// batch is never called: the anchor is measured for latency only.
func (r *bareRunner) batch(int) error { return errors.New("bare wazero has no throughput measure") }
func (r *bareRunner) close()          { _ = r.rt.Close(r.ctx) }

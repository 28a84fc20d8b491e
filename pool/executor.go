package pool

import (
	"context"
	"iter"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/future"
)

// Executor is what code that runs tasks needs from whatever runs them: the
// in-process Pool, or an executor whose workers are processes on other hosts
// (package cluster). Write against Executor and the choice between one
// machine and many is a line of setup, not a rewrite: the futures, their
// errors, AsCompleted and Wait are the same either way.
type Executor interface {
	// Submit starts a task and returns its future; ctx bounds the task's
	// whole life. Every error arrives through the future.
	Submit(ctx context.Context, t engine.Task) *future.Future[engine.Result]
	// Map runs tasks and yields their results in input order, reading the
	// input lazily; breaking out of the loop cancels what is in flight.
	Map(ctx context.Context, tasks iter.Seq[engine.Task]) iter.Seq2[engine.Result, error]
	// Shutdown stops taking tasks and waits for those submitted to finish;
	// if ctx ends first it cancels the rest and returns ctx.Err().
	Shutdown(ctx context.Context) error
	// Close stops at once, cancelling what has not finished.
	Close() error
}

var _ Executor = (*Pool)(nil)

// SubmitFunc is an Executor's Submit, as MapWindow takes it.
type SubmitFunc func(ctx context.Context, t engine.Task) *future.Future[engine.Result]

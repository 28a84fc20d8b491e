package main

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/wasmpool/wasmpool/engine"
)

// instanceProfile is what one instance of the module costs, measured on an
// isolated runtime as a process-like worker has: the two costs that decide
// between the modes (a fresh instance per task, or a call on a warm one),
// the linear memory an instance holds, and whether a task's outcome depends
// on the tasks before it on the same instance.
type instanceProfile struct {
	Runs int `json:"runs"`
	// Instantiate is the median time to build an instance, _initialize
	// included; for a WASI command, the median time of a whole run.
	Instantiate time.Duration `json:"instantiate_ns"`
	// Call is the median time of one task on a warm instance.
	Call time.Duration `json:"call_ns,omitempty"`
	// Linear memory, in bytes: after instantiation, after one task, and after
	// Runs tasks on the same instance.
	MemoryInstantiated uint64 `json:"memory_after_instantiate_bytes,omitempty"`
	MemoryAfterTask    uint64 `json:"memory_after_task_bytes,omitempty"`
	MemoryAfterRuns    uint64 `json:"memory_after_runs_bytes,omitempty"`
	// CarryOver: "no" (a warm instance gave the same outcome as fresh ones
	// every time), "yes" (it did not: state carried over), "unknown" (fresh
	// instances disagree among themselves, or tasks failed) or "n/a" (a
	// command, which gets a fresh instance every run).
	CarryOver string `json:"state_carry_over"`
	Error     string `json:"error,omitempty"` // the first failure, if a task failed
}

// profileRuns is how many instances and warm calls the profile measures.
func profileRuns(samples int) int { return min(samples, 20) }

func profileInstance(ctx context.Context, e *engine.Engine, t engine.Task, runs int, prog *progress) instanceProfile {
	prof := instanceProfile{Runs: runs, CarryOver: "unknown"}
	rt, err := e.NewRuntime(ctx)
	if err != nil {
		prof.Error = err.Error()
		return prof
	}
	defer rt.Close(context.WithoutCancel(ctx))
	fail := func(err error) {
		if prof.Error == "" {
			prof.Error = errorLine(t.Module.Name(), err)
		}
	}
	if t.Func == "" {
		prof.CarryOver = "n/a"
		profileCommand(ctx, rt, t, &prof, prog, fail)
		return prof
	}

	// The first instance of the runtime loads the compiled code: not counted.
	if inst, err := rt.Instantiate(ctx, t); err == nil {
		_ = inst.Close(ctx)
	}
	var builds, calls []time.Duration
	var fresh, warm []string
	for range runs {
		if ctx.Err() != nil {
			return prof
		}
		start := time.Now()
		inst, err := rt.Instantiate(ctx, t)
		builds = append(builds, time.Since(start))
		prog.add(err != nil)
		if err != nil {
			fail(err)
			continue
		}
		prof.MemoryInstantiated = inst.MemoryBytes()
		res, err := inst.Call(ctx, t)
		if err != nil {
			fail(err)
		}
		fresh = append(fresh, outcomeKey(res, err))
		_ = inst.Close(ctx)
	}
	slices.Sort(builds)
	prof.Instantiate = percentile(builds, 50)

	inst, err := rt.Instantiate(ctx, t)
	if err != nil {
		fail(err)
		return prof
	}
	defer inst.Close(context.WithoutCancel(ctx))
	for i := range runs {
		if ctx.Err() != nil || inst.Broken() {
			break
		}
		start := time.Now()
		res, err := inst.Call(ctx, t)
		calls = append(calls, time.Since(start))
		prog.add(err != nil)
		if err != nil {
			fail(err)
		}
		warm = append(warm, outcomeKey(res, err))
		if i == 0 {
			prof.MemoryAfterTask = inst.MemoryBytes()
		}
	}
	prof.MemoryAfterRuns = inst.MemoryBytes()
	slices.Sort(calls)
	prof.Call = percentile(calls, 50)
	if prof.Error == "" && len(fresh) == runs && len(warm) == runs {
		prof.CarryOver = carryOver(fresh, warm)
	}
	return prof
}

// profileCommand times whole runs of a WASI command: for a command, an
// instance is a run.
func profileCommand(ctx context.Context, rt *engine.Runtime, t engine.Task, prof *instanceProfile, prog *progress, fail func(error)) {
	_, _ = rt.Run(ctx, t) // loads the compiled code: not counted
	var runs []time.Duration
	for range prof.Runs {
		if ctx.Err() != nil {
			break
		}
		start := time.Now()
		_, err := rt.Run(ctx, t)
		runs = append(runs, time.Since(start))
		prog.add(err != nil)
		if err != nil {
			fail(err)
		}
		prog.add(err != nil) // counts for the warm calls a command does not have
	}
	slices.Sort(runs)
	prof.Instantiate = percentile(runs, 50)
}

// carryOver compares the outcomes of tasks on fresh instances with those of
// the same task run again and again on one instance.
func carryOver(fresh, warm []string) string {
	for _, o := range fresh[1:] {
		if o != fresh[0] {
			return "unknown" // fresh instances disagree: the task is not deterministic
		}
	}
	for _, o := range warm {
		if o != fresh[0] {
			return "yes"
		}
	}
	return "no"
}

// outcomeKey is what a task produced, for comparing two runs.
func outcomeKey(res engine.Result, err error) string {
	var b bytes.Buffer
	b.Write(res.Output)
	fmt.Fprintf(&b, "\x00%v\x00%d\x00%v", res.Values, res.ExitCode, err)
	return b.String()
}

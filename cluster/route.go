package cluster

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/internal/taskerr"
)

// Routing: a task that requires something of its worker goes only to a
// worker that has it. Requirements are compared with what workers
// advertise (WorkerInfo), and every task with the same requirements shares
// one queue: a subject of the routed stream, named by a hash of the
// requirements' canonical form, read by one durable consumer. A worker
// pulls from the queues whose requirements it meets, besides the common
// queue, which tasks without requirements keep to themselves exactly as
// before (their subject, consumer and cost are unchanged).

// Requirements are what a task needs of the worker that runs it. The zero
// value needs nothing.
type Requirements struct {
	// Labels must all be among the worker's (WorkerConfig.Labels), with the
	// same values.
	Labels map[string]string `json:"labels,omitempty"`
	// Capabilities must all be provided by the worker's engine. A task's
	// Grants are required too without being listed here: a task granting a
	// capability goes to a worker that provides it, instead of one that
	// would refuse it.
	Capabilities []string `json:"capabilities,omitempty"`
	// Mounts needs a worker that allows mounts (WorkerConfig.AllowMounts).
	// A task with Mounts requires it without saying so.
	Mounts bool `json:"mounts,omitempty"`
	// MemoryBytes needs a worker whose memory limit for one task is at
	// least this (WorkerInfo.MemoryLimit).
	MemoryBytes uint64 `json:"memory_bytes,omitempty"`
}

// IsZero reports whether r requires nothing.
func (r Requirements) IsZero() bool {
	return len(r.Labels) == 0 && len(r.Capabilities) == 0 && !r.Mounts && r.MemoryBytes == 0
}

// With is r and more together: o's labels over r's, every capability of
// both, mounts if either, the larger memory.
func (r Requirements) With(o Requirements) Requirements {
	out := Requirements{Mounts: r.Mounts || o.Mounts, MemoryBytes: max(r.MemoryBytes, o.MemoryBytes)}
	if len(r.Labels)+len(o.Labels) > 0 {
		out.Labels = maps.Clone(r.Labels)
		if out.Labels == nil {
			out.Labels = map[string]string{}
		}
		maps.Copy(out.Labels, o.Labels)
	}
	out.Capabilities = slices.Compact(slices.Sorted(slices.Values(append(slices.Clone(r.Capabilities), o.Capabilities...))))
	if len(out.Capabilities) == 0 {
		out.Capabilities = nil
	}
	return out
}

// needs is everything the task requires: the requirements given, and what
// its grants and mounts imply.
func needs(t *engine.Task, given Requirements) Requirements {
	return given.With(Requirements{Capabilities: t.Grants, Mounts: len(t.Mounts) > 0})
}

// items are the requirements one by one, in their canonical order, as
// error messages and status name them.
func (r Requirements) items() []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(r.Labels)) {
		out = append(out, "label "+k+"="+r.Labels[k])
	}
	for _, c := range slices.Compact(slices.Sorted(slices.Values(r.Capabilities))) {
		out = append(out, "capability "+c)
	}
	if r.Mounts {
		out = append(out, "mounts")
	}
	if r.MemoryBytes > 0 {
		out = append(out, fmt.Sprintf("memory %d", r.MemoryBytes))
	}
	return out
}

// String is the requirements as one line: "label gpu=a100, capability http".
func (r Requirements) String() string { return strings.Join(r.items(), ", ") }

// routeKey names the queue of tasks with requirements r: equal requirements,
// however written, have one key, which is a token NATS subjects and
// consumer names take.
func (r Requirements) routeKey() string {
	sum := sha256.Sum256([]byte(strings.Join(r.items(), "\n")))
	return hex.EncodeToString(sum[:10])
}

func (r Requirements) check() error {
	if err := CheckLabels(r.Labels); err != nil {
		return errors.New(strings.Replace(err.Error(), "worker label", "required label", 1))
	}
	for _, c := range r.Capabilities {
		if c == "" {
			return errors.New("cluster: a required capability has no name")
		}
	}
	return nil
}

// Missing lists what of r the worker lacks, as the items of r name them:
// nil when it can run such a task. A worker that is draining lacks
// nothing, but takes no task: see canServe.
func (r Requirements) Missing(w WorkerInfo) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(r.Labels)) {
		if v, ok := w.Labels[k]; !ok || v != r.Labels[k] {
			out = append(out, "label "+k+"="+r.Labels[k])
		}
	}
	for _, c := range slices.Compact(slices.Sorted(slices.Values(r.Capabilities))) {
		if !slices.Contains(w.Capabilities, c) {
			out = append(out, "capability "+c)
		}
	}
	if r.Mounts && !w.AllowMounts {
		out = append(out, "mounts")
	}
	if r.MemoryBytes > w.MemoryLimit {
		out = append(out, fmt.Sprintf("memory %d", r.MemoryBytes))
	}
	return out
}

func canServe(r Requirements, w WorkerInfo) bool { return !w.Draining && len(r.Missing(w)) == 0 }

// decodeRouteRecord reads a requirement set's record, checking that its key
// is its requirements' own (a record this version cannot read is skipped).
func decodeRouteRecord(key string, data []byte) (Requirements, bool) {
	var r Requirements
	if json.Unmarshal(data, &r) != nil || r.IsZero() || r.routeKey() != key {
		return Requirements{}, false
	}
	return r, true
}

// noWorkerError is the error of a routed task no live worker could run for
// the executor's RouteWait. It matches ErrNoWorker, and also
// engine.ErrNoCapability when no live worker provides a capability the
// task grants: the refusal a worker would have made, said without sending
// the task to one.
type noWorkerError struct {
	req     Requirements
	workers []WorkerInfo // live, when the wait ended
	waited  string
}

func (e *noWorkerError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%v: it requires %s", ErrNoWorker, e.req)
	switch len(e.workers) {
	case 0:
		b.WriteString("; no worker is live")
	case 1:
		b.WriteString("; 1 worker live: ")
	default:
		fmt.Fprintf(&b, "; %d workers live: ", len(e.workers))
	}
	if len(e.workers) > 0 {
		for i, w := range e.workers {
			if i > 0 {
				b.WriteString(", ")
			}
			if i == 8 {
				fmt.Fprintf(&b, "and %d more", len(e.workers)-i)
				break
			}
			if w.Draining {
				fmt.Fprintf(&b, "%s is draining", w.Name)
				continue
			}
			fmt.Fprintf(&b, "%s lacks %s", w.Name, strings.Join(e.req.Missing(w), ", "))
		}
	}
	fmt.Fprintf(&b, " (waited %s)", e.waited)
	return b.String()
}

func (e *noWorkerError) Unwrap() []error {
	for _, c := range e.req.Capabilities {
		if !slices.ContainsFunc(e.workers, func(w WorkerInfo) bool { return slices.Contains(w.Capabilities, c) }) {
			return []error{taskerr.ErrNoWorker, engine.ErrNoCapability}
		}
	}
	return []error{taskerr.ErrNoWorker}
}

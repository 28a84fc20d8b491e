// Package benchcmp is wasmpool's benchmark harness, what `make bench` runs:
// one run that measures wasmpool's two modes, a plain Go goroutine pool (the
// physical floor), bare wazero (the anchor for instantiation and start-up)
// and Python's ThreadPoolExecutor and ProcessPoolExecutor (bench.py, when
// python3 is on PATH) on the same workloads, and prints one table of
// latencies, throughputs and ratios, followed by issue 4's targets, each
// measured against its anchor from the same run; then what stopping a guest
// costs (interrupt.go) and the I/O-bound flagship, 200 URLs fetched with 50
// workers against a Go pool and Python's threads (fetch.go). The report is
// also saved as JSON, for tracking the figures across commits.
//
//	go run ./internal/benchcmp/cmd/benchcmp -quick
//
// It is internal: a tool for wasmpool's developers, not an API.
//
//	c := benchcmp.Quick()
//	rep, err := benchcmp.Run(ctx, c)
//	err = rep.WriteJSON("build/bench.json")
package benchcmp

package main

import (
	"os"
	"runtime/debug"
	"sync"
)

// startupGCPercent is the GC target of a one-task command while it starts.
//
// Starting, `wasmpool run` decodes and validates megabytes of module (a cache
// hit still does), and nearly all of it is garbage within milliseconds. In a
// young process, whose heap target starts at 4 MiB, collecting at the default
// 100% meant several GC cycles during start-up: a fifth of a cold start. At
// 400% there is about one. The setting goes back to normal (restore) before
// the guest runs, so its own memory use is collected as usual.
const startupGCPercent = 400

// startupGC raises the GC target for start-up, unless the user set GOGC, and
// returns what restores it (safe to call more than once).
func startupGC() (restore func()) {
	if _, set := os.LookupEnv("GOGC"); set {
		return func() {}
	}
	old := debug.SetGCPercent(startupGCPercent)
	var once sync.Once
	return func() { once.Do(func() { debug.SetGCPercent(old) }) }
}

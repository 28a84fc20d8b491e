package engine_test

import (
	"context"
	"testing"

	"github.com/wasmpool/wasmpool/engine"
)

// BenchmarkRunFreshPreinitialized is BenchmarkRunFresh for a Go guest with
// Config.Preinitialize: a fresh instance from the template instead of the
// Go runtime's start-up.
func BenchmarkRunFreshPreinitialized(b *testing.B) {
	ctx := context.Background()
	for _, pre := range []bool{false, true} {
		name := "plain"
		if pre {
			name = "preinitialized"
		}
		b.Run(name, func(b *testing.B) {
			e := newEngine(b, engine.Config{Preinitialize: pre})
			task := engine.Task{Module: compileGo(b, e, "upper"), Func: "upper", Input: []byte("x")}
			if _, err := e.Run(ctx, task); err != nil { // takes the template
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := e.Run(ctx, task); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

package wasmbin

import (
	"crypto/sha256"
	"slices"
	"testing"

	"github.com/wasmpool/wasmpool/internal/testmod"
)

// BenchmarkCompilePasses times each pass the engine makes over a Go guest's
// bytes before wazero sees them: what a CLI start pays on top of wazero.
// sha256 and clone are the engine's own (the module's digest, its copy),
// for scale.
func BenchmarkCompilePasses(b *testing.B) {
	wasm := testmod.Bytes(b, "upper")
	b.Run("sha256", func(b *testing.B) {
		for b.Loop() {
			sha256.Sum256(wasm)
		}
	})
	b.Run("clone", func(b *testing.B) {
		for b.Loop() {
			_ = slices.Clone(wasm)
		}
	})
	b.Run("Check", func(b *testing.B) {
		for b.Loop() {
			if _, err := Check(wasm); err != nil {
				b.Fatal(err)
			}
		}
	})
	facts, err := Check(wasm)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("StateOnlyInMemoryAndGlobals", func(b *testing.B) {
		for b.Loop() {
			if !facts.StateOnlyInMemoryAndGlobals() {
				b.Fatal("a Go guest's state is its memory and globals")
			}
		}
	})
	for _, pre := range []bool{false, true} {
		name := "Rewrite"
		if pre {
			name = "RewritePreinitialize"
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if _, err := Rewrite(wasm, facts, RewriteOptions{Preinitialize: pre}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	// Both, as the engine makes them.
	for _, pre := range []bool{false, true} {
		name := "Check+Rewrite"
		if pre {
			name = "Check+RewritePreinitialize"
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				facts, err := Check(wasm)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := Rewrite(wasm, facts, RewriteOptions{Preinitialize: pre}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

package engine

import (
	"crypto/sha256"
	"slices"
	"testing"

	"github.com/wasmpool/wasmpool/internal/testmod"
)

// BenchmarkCompilePasses times each pass compileNew makes over a Go guest's
// bytes before wazero sees them: what a CLI start pays on top of wazero.
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
	b.Run("checkModule", func(b *testing.B) {
		for b.Loop() {
			if _, err := checkModule(wasm); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("mergeDataSegments", func(b *testing.B) {
		for b.Loop() {
			mergeDataSegments(wasm)
		}
	})
	b.Run("preinitCode", func(b *testing.B) {
		code := mergeDataSegments(wasm)
		for b.Loop() {
			preinitCode(code)
		}
	})
}

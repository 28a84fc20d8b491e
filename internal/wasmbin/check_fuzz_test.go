package wasmbin

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/tetratelabs/wazero"

	"github.com/wasmpool/wasmpool/internal/testmod"
)

// FuzzCheck holds Check to wazero's own decoder: a module the check calls
// malformed must be one wazero refuses too (the check must not cost users a
// module wazero can run), and Rewrite (capping the tables, merging the data
// segments, exporting the globals) must not change whether it compiles. An input where the check is more
// lenient than wazero is caught by the other half: wazero would then decode
// something unchecked, and the hostile counts make that a crash.
func FuzzCheck(f *testing.F) {
	root, err := testmod.Root()
	if err != nil {
		f.Fatal(err)
	}
	paths, _ := filepath.Glob(filepath.Join(root, "testdata", "wat", "*.wasm"))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, wasm []byte) {
		facts, err := Check(wasm)
		var le *LimitError
		if errors.As(err, &le) {
			return // over a limit: wazero would accept it, on purpose
		}
		// The interpreter decodes and validates exactly as the compiler
		// does, without generating code.
		r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
		defer r.Close(ctx)
		var short *ShortError
		if errors.As(err, &short) {
			// A count or length over the bytes left, or a truncated
			// section: exactly what wazero sizes a buffer from before
			// noticing, so it cannot be asked (the count bomb would kill
			// this test). That a count over the bytes left is malformed
			// needs no fuzzing.
			return
		}
		if err != nil {
			if _, werr := r.CompileModule(ctx, wasm); werr == nil {
				t.Fatalf("Check refused a module wazero accepts: %v", err)
			}
			return
		}
		_, before := r.CompileModule(ctx, wasm)
		rw, err := Rewrite(wasm, facts, RewriteOptions{Preinitialize: true})
		if err != nil {
			t.Fatal(err)
		}
		_, after := r.CompileModule(ctx, rw.Wasm)
		if (before == nil) != (after == nil) {
			t.Fatalf("the rewrite changed whether the module compiles: before %v, after %v", before, after)
		}
	})
}

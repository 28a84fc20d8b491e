package engine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/tetratelabs/wazero"

	"github.com/wasmpool/wasmpool/internal/testmod"
)

// FuzzModuleCheck holds checkModule to wazero's own decoder: a module the
// check calls malformed must be one wazero refuses too (the check must not
// cost users a module wazero can run), and capping the tables of a module
// must not change whether it compiles. An input where the check is more
// lenient than wazero is caught by the other half: wazero would then decode
// something unchecked, and the hostile counts make that a crash.
func FuzzModuleCheck(f *testing.F) {
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
		facts, err := checkModule(wasm)
		var le *limitErr
		if errors.As(err, &le) {
			return // over a limit: wazero would accept it, on purpose
		}
		// The interpreter decodes and validates exactly as the compiler
		// does, without generating code.
		r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
		defer r.Close(ctx)
		var short *shortError
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
				t.Fatalf("checkModule refused a module wazero accepts: %v", err)
			}
			return
		}
		_, before := r.CompileModule(ctx, wasm)
		code := wasm
		if facts.tableCap != nil {
			code = splice(wasm, *facts.tableCap)
		}
		_, after := r.CompileModule(ctx, code)
		if (before == nil) != (after == nil) {
			t.Fatalf("capping the tables changed whether the module compiles: before %v, after %v", before, after)
		}
	})
}

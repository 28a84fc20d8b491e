package engine_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/internal/testmod"
)

// BenchmarkStreamedFilter streams 87 MB through a C filter that reads with
// getchar and writes with putchar (ctool cat: a kilobyte per read and per
// write) with Task.Stdin and Task.Stdout, against bare wazero given the same
// streams, stdin a file and a pipe. NoInterrupt on both sides, so that what
// differs is the stdio path alone (the guest code is the same):
//
//	go test -run '^$' -bench StreamedFilter -benchtime 3x ./engine/
func BenchmarkStreamedFilter(b *testing.B) {
	ctx := context.Background()
	wasm := testmod.C(b, "ctool")
	in := filepath.Join(b.TempDir(), "in.txt")
	line := []byte("the quick brown fox jumps over the lazy dog, again and again and again\n")
	data := bytes.Repeat(line, 87e6/len(line))
	if err := os.WriteFile(in, data, 0o644); err != nil {
		b.Fatal(err)
	}

	e, err := engine.New(ctx, engine.Config{NoInterrupt: true})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close(ctx)
	m, err := e.CompileFile(ctx, wasm)
	if err != nil {
		b.Fatal(err)
	}
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	wasi_snapshot_preview1.MustInstantiate(ctx, r)
	code, err := os.ReadFile(wasm)
	if err != nil {
		b.Fatal(err)
	}
	bare, err := r.CompileModule(ctx, code)
	if err != nil {
		b.Fatal(err)
	}

	runs := map[string]func(stdin io.Reader, stdout io.Writer) error{
		"engine": func(stdin io.Reader, stdout io.Writer) error {
			_, err := e.Run(ctx, engine.Task{Module: m, Args: []string{"cat"}, Stdin: stdin, Stdout: stdout})
			return err
		},
		"wazero": func(stdin io.Reader, stdout io.Writer) error {
			mod, err := r.InstantiateModule(ctx, bare, wazero.NewModuleConfig().WithName("").
				WithArgs("ctool", "cat").WithStdin(stdin).WithStdout(stdout))
			if mod != nil {
				mod.Close(ctx)
			}
			return err
		},
	}
	for _, kind := range []string{"file", "pipe"} {
		for _, name := range []string{"wazero", "engine"} {
			b.Run(kind+"/"+name, func(b *testing.B) {
				b.SetBytes(int64(len(data)))
				devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
				if err != nil {
					b.Fatal(err)
				}
				defer devnull.Close()
				for range b.N {
					f, err := os.Open(in)
					if err != nil {
						b.Fatal(err)
					}
					var stdin io.Reader = f
					if kind == "pipe" {
						pr, pw, err := os.Pipe()
						if err != nil {
							b.Fatal(err)
						}
						go func() { _, _ = io.Copy(pw, f); pw.Close() }()
						stdin = pr
						defer pr.Close()
					}
					if err := runs[name](stdin, devnull); err != nil {
						b.Fatal(err)
					}
					f.Close()
				}
			})
		}
	}
}

package main

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/wasmpool/wasmpool/internal/testmod"
)

// streamBenchBytes is the size of the stream: the 87 MB of the report that
// streaming stdin through getchar took 9.7 s under wasmpool run and 1.2 s
// under wazero run.
const streamBenchBytes = 87e6

// BenchmarkStreamStdio streams 87 MB through a C filter reading with getchar
// and writing with putchar (ctool cat, stdio-buffered: a kilobyte per read
// and per write) under wasmpool run (this test binary as the CLI) and under
// wazero's own CLI, each a process of its own, with stdin a file and a pipe:
//
//	go test -run '^$' -bench StreamStdio -benchtime 3x ./cmd/wasmpool/
//
// The figures include each CLI's start (a cache hit for both).
func BenchmarkStreamStdio(b *testing.B) {
	tool := testmod.C(b, "ctool")
	in := filepath.Join(b.TempDir(), "in.txt")
	line := []byte("the quick brown fox jumps over the lazy dog, again and again and again\n")
	data := bytes.Repeat(line, int(streamBenchBytes)/len(line))
	if err := os.WriteFile(in, data, 0o644); err != nil {
		b.Fatal(err)
	}
	clis := map[string]func() *exec.Cmd{
		"wasmpool": func() *exec.Cmd {
			cmd := exec.Command(os.Args[0], "run", tool, "--", "cat")
			cmd.Env = append(os.Environ(), asCLIEnv+"=1")
			return cmd
		},
		"wazero": func() *exec.Cmd {
			return testmod.WazeroCommand(b, "run", "-cachedir", testmod.WazeroCompileCache(), tool, "cat")
		},
	}
	for _, stdin := range []string{"file", "pipe"} {
		for _, name := range []string{"wazero", "wasmpool"} {
			b.Run(stdin+"/"+name, func(b *testing.B) {
				b.SetBytes(int64(len(data)))
				for range b.N {
					cmd := clis[name]()
					var out countWriter
					cmd.Stdout = &out
					f, err := os.Open(in)
					if err != nil {
						b.Fatal(err)
					}
					if stdin == "file" {
						cmd.Stdin = f
					} else {
						cmd.Stdin = struct{ io.Reader }{f} // not an *os.File: exec copies it through a pipe
					}
					if err := cmd.Run(); err != nil {
						b.Fatalf("%s: %v", name, err)
					}
					f.Close()
					if out.n != int64(len(data)) {
						b.Fatalf("%s wrote %d bytes, want %d", name, out.n, len(data))
					}
				}
			})
		}
	}
}

// countWriter counts what is written to it. (exec copies a non-file stdout
// through a pipe too, as a shell's pipeline would.)
type countWriter struct{ n int64 }

func (w *countWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	return len(p), nil
}

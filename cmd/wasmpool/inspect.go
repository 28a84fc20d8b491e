package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/tetratelabs/wazero/api"

	"github.com/wasmpool/wasmpool/engine"
)

// Import classes shown by inspect.
const (
	classWASI  = "wasi"
	classABI   = "wasmpool-abi"
	classOther = "other"
)

// Module kinds shown by inspect.
const (
	kindCommand = "command"
	kindReactor = "reactor"
	kindLibrary = "library"
)

type inspectReport struct {
	Name           string          `json:"name"`
	Digest         string          `json:"digest"`
	Size           int             `json:"size"`
	Kind           string          `json:"kind"`
	Tasks          []string        `json:"tasks"`
	MemoryMinBytes uint64          `json:"memory_min_bytes"`
	CompileTimeMS  float64         `json:"compile_time_ms"`
	CacheHit       bool            `json:"cache_hit"`
	Imports        []inspectImport `json:"imports"`
	Exports        []inspectExport `json:"exports"`
}

type inspectImport struct {
	Module    string `json:"module"`
	Name      string `json:"name"`
	Kind      string `json:"kind"`
	Signature string `json:"signature,omitempty"`
	Class     string `json:"class"`
}

type inspectExport struct {
	Name      string   `json:"name"`
	Signature string   `json:"signature"`
	Params    []string `json:"params"`
	Results   []string `json:"results"`
	Task      bool     `json:"task"`
}

func (a *app) inspectCmd() *cobra.Command {
	var (
		f      engineFlags
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "inspect MODULE",
		Short: "Show a module's kind, imports, exports, memory and compile time",
		Long: `Show what a module is and what it needs: its kind (a WASI command, a reactor
with SDK tasks, or a plain library of functions), its imports (WASI, the
wasmpool ABI, or other), its exports with their signatures (SDK tasks, of
signature () -> i32, are marked), its minimum memory, and how long it took
to compile (or whether it came from the cache).`,
		Args: exactArgs(1, "MODULE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			defer startupGC()() // all of inspect is start-up
			path := args[0]
			if _, err := statModule(path); err != nil {
				return err
			}
			e, err := f.newEngine(a.ctx, cmd.Flags(), a.stderr)
			if err != nil {
				return err
			}
			defer e.Close(a.ctx)
			a.started(path)
			m, err := e.CompileFile(a.ctx, path)
			if err != nil {
				return err
			}
			r := describe(m)
			if asJSON {
				_, err := a.stdout.Write(jsonIndent(r))
				return err
			}
			return r.write(a)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	f.addCompile(cmd.Flags())
	return cmd
}

func describe(m *engine.Module) inspectReport {
	r := inspectReport{
		Name: m.Name(), Digest: "sha256:" + m.Digest(), Size: m.Size(),
		MemoryMinBytes: m.MemoryMinBytes(),
		CompileTimeMS:  float64(m.CompileTime().Microseconds()) / 1000,
		CacheHit:       m.CacheHit(),
		Tasks:          []string{},
		Imports:        []inspectImport{},
		Exports:        []inspectExport{},
	}
	usesABI := false
	seen := map[inspectImport]bool{}
	for _, im := range m.Imports() {
		class := classOther
		switch im.Module {
		case "wasi_snapshot_preview1", "wasi_unstable":
			class = classWASI
		case engine.ABIModule:
			class = classABI
			usesABI = true
		}
		ii := inspectImport{Module: im.Module, Name: im.Name, Kind: im.Kind, Signature: im.Signature(), Class: class}
		if seen[ii] {
			continue // a module may import the same function twice (Go's do): it needs it once
		}
		seen[ii] = true
		r.Imports = append(r.Imports, ii)
	}
	initialize := false
	for _, x := range m.Exports() {
		task := x.IsTask() && x.Name != "_start" && x.Name != "_initialize"
		if task {
			r.Tasks = append(r.Tasks, x.Name)
		}
		if x.Name == "_initialize" {
			initialize = true
		}
		r.Exports = append(r.Exports, inspectExport{
			Name: x.Name, Signature: x.Signature(), Params: typeNames(x.Params), Results: typeNames(x.Results), Task: task,
		})
	}
	switch {
	case m.IsCommand():
		r.Kind = kindCommand
	case len(r.Tasks) > 0 && (usesABI || initialize):
		r.Kind = kindReactor
	default:
		r.Kind = kindLibrary
	}
	return r
}

func typeNames(ts []api.ValueType) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = api.ValueTypeName(t)
	}
	return out
}

func (r inspectReport) kindLine() string {
	switch r.Kind {
	case kindCommand:
		return "WASI command (exports _start): wasmpool run MODULE [-- ARGS]"
	case kindReactor:
		return fmt.Sprintf("reactor with SDK tasks (%s): wasmpool run MODULE --func NAME --input FILE", strings.Join(r.Tasks, ", "))
	}
	return "library of functions: wasmpool run MODULE --func NAME --params ..."
}

func (r inspectReport) write(a *app) error {
	w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	cache := "compiled"
	if r.CacheHit {
		cache = "cache hit"
	}
	fmt.Fprintf(w, "module\t%s\n", r.Name)
	fmt.Fprintf(w, "digest\t%s\n", r.Digest)
	fmt.Fprintf(w, "size\t%s\n", humanBytes(uint64(r.Size)))
	fmt.Fprintf(w, "kind\t%s\n", r.kindLine())
	fmt.Fprintf(w, "memory\tmin %s\n", humanBytes(r.MemoryMinBytes))
	fmt.Fprintf(w, "compile\t%.3fms (%s)\n", r.CompileTimeMS, cache)
	if err := w.Flush(); err != nil {
		return err
	}

	fmt.Fprintf(a.stdout, "\nimports (%d):\n", len(r.Imports))
	w = tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	for _, im := range r.Imports {
		sig := im.Signature
		if im.Kind != "func" {
			sig = im.Kind
		}
		fmt.Fprintf(w, "  %s.%s\t%s\t[%s]\n", im.Module, im.Name, sig, im.Class)
	}
	if err := w.Flush(); err != nil {
		return err
	}

	fmt.Fprintf(a.stdout, "\nexports (%d):\n", len(r.Exports))
	w = tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	for _, x := range r.Exports {
		mark := ""
		switch {
		case x.Task:
			mark = "[task]"
		case x.Name == "_start":
			mark = "[command entry]"
		case x.Name == "_initialize":
			mark = "[reactor init]"
		}
		fmt.Fprintf(w, "  %s\t%s\t%s\n", x.Name, x.Signature, mark)
	}
	return w.Flush()
}

// humanBytes prints a size the way the flags read it: "64 KiB (65536 bytes)".
func humanBytes(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB (%d bytes)", float64(n)/(1<<30), n)
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB (%d bytes)", float64(n)/(1<<20), n)
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB (%d bytes)", float64(n)/(1<<10), n)
	}
	return fmt.Sprintf("%d bytes", n)
}

package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
)

// mapInput is one input of map: a file (named as given, or as found under a
// directory given) or a line.
type mapInput struct {
	name string // the file's path, or the line's text
	line int    // with --lines: the line number, from 1
	out  string // with --output-dir: the result file's path, without its extension
}

// label is how messages name the input.
func (in mapInput) label() string {
	if in.line > 0 {
		return fmt.Sprintf("line %d", in.line)
	}
	return strconv.Quote(in.name)
}

// expandInputs lists the files map runs over: each INPUT file as given, and
// every regular file under each INPUT directory (recursively, in lexical
// order) whose base name matches glob. A symbolic link to a file counts as
// the file; links to directories are not followed, as find does by default.
func expandInputs(inputs []string, glob string) ([]string, error) {
	if _, err := path.Match(glob, ""); err != nil {
		return nil, usagef("--glob %q: %v", glob, err)
	}
	var files []string
	for _, in := range inputs {
		info, err := os.Stat(in)
		if err != nil {
			return nil, fileError("input", in, err)
		}
		if !info.IsDir() {
			files = append(files, in)
			continue
		}
		before := len(files)
		err = filepath.WalkDir(in, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				return nil
			}
			if ok, _ := path.Match(glob, d.Name()); !ok {
				return nil
			}
			if d.Type()&fs.ModeSymlink != 0 {
				if info, err := os.Stat(p); err != nil || !info.Mode().IsRegular() {
					return nil
				}
			} else if !d.Type().IsRegular() {
				return nil
			}
			files = append(files, p)
			return nil
		})
		if err != nil {
			return nil, fileError("input directory", in, err)
		}
		if len(files) == before {
			return nil, &usageError{msg: fmt.Sprintf("input directory %q: no file matches --glob %q", in, glob)}
		}
	}
	return files, nil
}

// outputNames gives each input file its result file under dir: the input's
// path as given when it is relative and stays below the current directory
// (so a tree of inputs gives the same tree of results), its base name
// otherwise. Two inputs that would share a result file are a usage error.
func outputNames(files []string, dir string) ([]string, error) {
	outs := make([]string, len(files))
	owner := map[string]string{}
	for i, f := range files {
		rel := filepath.Clean(f)
		if !filepath.IsLocal(rel) {
			rel = filepath.Base(rel)
		}
		out := filepath.Join(dir, rel)
		if prev, dup := owner[out]; dup {
			return nil, &usageError{msg: fmt.Sprintf("--output-dir: inputs %q and %q would both write %q", prev, f, out+".out")}
		}
		owner[out] = f
		outs[i] = out
	}
	return outs, nil
}

// hasPlaceholder reports whether any argument names the input: then the
// input is passed by name, as xargs -I and GNU parallel pass it.
func hasPlaceholder(args []string) bool {
	for _, a := range args {
		for _, p := range placeholders {
			if strings.Contains(a, p) {
				return true
			}
		}
	}
	return false
}

// placeholders, as GNU parallel reads them. Longest first, so that "{/.}" is
// not read as "{/" and ".}".
var placeholders = []string{"{/.}", "{//}", "{/}", "{.}", "{}"}

// substitute replaces the placeholders in args with parts of name: {} the
// input, {/} its base name, {//} its directory, {.} it without its
// extension, {/.} its base name without its extension.
func substitute(args []string, name string) []string {
	base := path.Base(filepath.ToSlash(name))
	noExt := func(s string) string { return strings.TrimSuffix(s, path.Ext(s)) }
	r := strings.NewReplacer(
		"{/.}", noExt(base),
		"{//}", filepath.Dir(name),
		"{/}", base,
		"{.}", noExt(name),
		"{}", name,
	)
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = r.Replace(a)
	}
	return out
}

// fileItems makes one item per file, reading each only when its turn comes
// (not at all when byName: the guest opens it itself).
func fileItems(ins []mapInput, byName bool, mk func(mapInput, []byte) *item) func() (*item, bool) {
	i := 0
	return func() (*item, bool) {
		if i >= len(ins) {
			return nil, false
		}
		in := ins[i]
		i++
		if byName {
			return mk(in, nil), true
		}
		data, err := os.ReadFile(in.name)
		j := mk(in, data)
		if err != nil {
			j.err = fileError("input", in.name, err)
		}
		return j, true
	}
}

// lineItems makes one item per line of r (without its line ending), reading
// lazily: a line is read only when the pool has room for it.
func lineItems(r io.Reader, outDir string, mk func(mapInput, []byte) *item) func() (*item, bool) {
	br := bufio.NewReaderSize(r, 64<<10)
	n := 0
	ended := false
	return func() (*item, bool) {
		if ended {
			return nil, false
		}
		line, err := br.ReadBytes('\n')
		if err != nil {
			ended = true
			if !errors.Is(err, io.EOF) {
				n++
				j := mk(mapInput{line: n}, nil)
				j.err = fmt.Errorf("reading line %d: %w", n, err)
				return j, true
			}
			if len(line) == 0 {
				return nil, false
			}
		}
		n++
		line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
		in := mapInput{name: string(line), line: n}
		if outDir != "" {
			in.out = filepath.Join(outDir, "line-"+strconv.Itoa(n))
		}
		return mk(in, line), true
	}
}

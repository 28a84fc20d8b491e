package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wasmpool/wasmpool/internal/testmod"
)

// The README as a newcomer meets it: every command of its CLI section runs
// as written from the repository root after `make build modules`, and says
// what its comment says; every other wasmpool command line in it parses;
// every Go snippet is a file that make test compiles and runs.

// readme returns the README and the repository root.
func readme(t *testing.T) (string, string) {
	t.Helper()
	root, err := testmod.Root()
	require.NoError(t, err)
	b, err := os.ReadFile(filepath.Join(root, "README.md"))
	require.NoError(t, err)
	return string(b), root
}

// fencedBlocks returns the contents of the README's ``` blocks of a language.
func fencedBlocks(md, lang string) []string {
	re := regexp.MustCompile("(?ms)^```" + lang + "\n(.*?)^```\n")
	var blocks []string
	for _, m := range re.FindAllStringSubmatch(md, -1) {
		blocks = append(blocks, m[1])
	}
	return blocks
}

// cliSection is the first sh block after the "## The CLI" heading.
func cliSection(t *testing.T, md string) string {
	t.Helper()
	_, after, ok := strings.Cut(md, "\n## The CLI\n")
	require.True(t, ok, "the README has no CLI section")
	blocks := fencedBlocks(after, "sh")
	require.NotEmpty(t, blocks)
	return blocks[0]
}

// readmeCommand is one line of the CLI section and what its comment says.
type readmeCommand struct {
	line   string // the shell command
	status int    // "# exit N", else 0
	prints *string
}

var (
	exitComment   = regexp.MustCompile(`^exit (\d+)`)
	printsComment = regexp.MustCompile(`^prints (\S+)`)
)

func parseREADMECommands(t *testing.T, block string) (vars string, cmds []readmeCommand) {
	t.Helper()
	for _, raw := range strings.Split(block, "\n") {
		line, comment, _ := strings.Cut(raw, "  #")
		line, comment = strings.TrimSpace(line), strings.TrimSpace(comment)
		switch {
		case line == "", strings.HasPrefix(line, "make "):
			continue
		case strings.HasPrefix(line, "W="):
			vars = line
			continue
		}
		c := readmeCommand{line: line}
		if m := exitComment.FindStringSubmatch(comment); m != nil {
			c.status, _ = strconv.Atoi(m[1])
		}
		if m := printsComment.FindStringSubmatch(comment); m != nil {
			out := strings.TrimSuffix(m[1], ":")
			if out == "nothing" {
				out = ""
			}
			c.prints = &out
		}
		cmds = append(cmds, c)
	}
	require.NotEmpty(t, vars, "the CLI section sets W and M")
	return vars, cmds
}

// readmeCheckout is what `make build modules` leaves in a clone, in a new
// directory: build/wasmpool (this test binary, as the CLI), build/modules,
// and the repository's testdata and examples.
func readmeCheckout(t *testing.T, root string, modules []string) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "build", "modules"), 0o755))
	script := fmt.Sprintf("#!/bin/sh\n%s=1 exec %q \"$@\"\n", asCLIEnv, os.Args[0])
	require.NoError(t, os.WriteFile(filepath.Join(dir, "build", "wasmpool"), []byte(script), 0o755))
	for _, name := range modules {
		require.NoError(t, os.Symlink(gomod(t, name), filepath.Join(dir, "build", "modules", name+".wasm")))
	}
	require.NoError(t, os.Symlink(filepath.Join(root, "testdata"), filepath.Join(dir, "testdata")))
	// A copy, not a link: commands mount it, and a mount never follows a
	// link out of itself.
	require.NoError(t, os.CopyFS(filepath.Join(dir, "examples"), os.DirFS(filepath.Join(root, "examples"))))
	return dir
}

func TestREADMECommandsRunAsWritten(t *testing.T) {
	md, root := readme(t)
	block := cliSection(t, md)
	vars, cmds := parseREADMECommands(t, block)
	tasks, err := os.ReadFile(filepath.Join(root, "examples", "tasks.jsonl"))
	require.NoError(t, err)
	var modules []string
	seen := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?:\$M|build/modules)/(\w+)\.wasm`).FindAllStringSubmatch(block+string(tasks), -1) {
		if !seen[m[1]] {
			seen[m[1]] = true
			modules = append(modules, m[1])
		}
	}
	dir := readmeCheckout(t, root, modules)
	for _, c := range cmds {
		t.Run(c.line, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command("bash", "-c", vars+"\n"+c.line)
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			if _, ok := err.(*exec.ExitError); err != nil && !ok {
				t.Fatal(err)
			}
			assert.Equal(t, c.status, cmd.ProcessState.ExitCode(), "stdout %s\nstderr %s", stdout.String(), stderr.String())
			if c.prints != nil {
				assert.Equal(t, *c.prints, strings.TrimSpace(stdout.String()))
			}
			assert.NotContains(t, stderr.String(), "goroutine ")
			if c.status == 0 {
				assert.NotContains(t, stderr.String(), "wasmpool: ", "a command that succeeds says nothing on stderr")
			}
		})
	}
}

// TestREADMECommandLinesParse: the wasmpool command lines elsewhere in the
// README (a broker's, a worker's, a benchmark) name commands and flags that
// exist, with values of the right kind.
func TestREADMECommandLinesParse(t *testing.T) {
	md, _ := readme(t)
	n := 0
	for _, block := range fencedBlocks(md, "sh") {
		for _, raw := range strings.Split(block, "\n") {
			line, _, _ := strings.Cut(raw, "  #")
			fields := strings.Fields(line)
			if i := indexOf(fields, "|"); i >= 0 {
				fields = fields[i+1:]
			}
			if len(fields) == 0 || (fields[0] != "build/wasmpool" && fields[0] != "$W" && fields[0] != "wasmpool") {
				continue
			}
			n++
			args := fields[1:]
			for i, a := range args {
				args[i] = strings.Trim(a, "'")
			}
			root := (&app{}).rootCmd()
			cmd, rest, err := root.Find(args)
			require.NoError(t, err, line)
			require.NotEqual(t, root, cmd, "%s: no such command", line)
			assert.NoError(t, cmd.ParseFlags(rest), line)
		}
	}
	assert.Greater(t, n, 10, "found the README's command lines")
}

func indexOf(ss []string, s string) int {
	for i, x := range ss {
		if x == s {
			return i
		}
	}
	return -1
}

// TestREADMEGoSnippetsAreExamples: each Go block of the README is, verbatim,
// a file that make test compiles and runs: a program under examples/ (its
// Example runs main and checks what it prints) or the guest module the
// tests build.
func TestREADMEGoSnippetsAreExamples(t *testing.T) {
	md, root := readme(t)
	files := []string{"examples/goapi/main.go", "examples/isolated/main.go", "examples/cluster/main.go", "examples/clusterjob/main.go", "modules/go/upper/main.go",
		"examples/plugin/main.go", "modules/go/weather/main.go", "examples/fetch/main.go"}
	found := map[string]bool{}
	for i, block := range fencedBlocks(md, "go") {
		matched := ""
		for _, f := range files {
			b, err := os.ReadFile(filepath.Join(root, f))
			require.NoError(t, err)
			if string(b) == block {
				matched = f
			}
		}
		assert.NotEmpty(t, matched, "Go block %d of the README is none of %v, word for word:\n%s", i+1, files, block)
		found[matched] = true
	}
	for _, f := range files {
		assert.True(t, found[f], "the README no longer shows %s", f)
	}
}

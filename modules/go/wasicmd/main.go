//go:build wasip1

// Command wasicmd is a WASI command (it has a main and exports _start) with a
// handful of subcommands for exercising the host's stdio, arguments,
// environment, exit codes and mounts:
//
//	echo ARGS...      print ARGS joined by spaces
//	upper             copy stdin to stdout, upper-cased
//	args ARGS...      print "args" and then each ARG, one per line
//	env               print the environment, sorted, one per line
//	ls DIR            print the names in DIR, one per line
//	cat PATH          copy the file at PATH to stdout
//	write PATH TEXT   create or truncate PATH and write TEXT to it
//	rm PATH           remove PATH
//	mv FROM TO        rename FROM to TO
//	chmod PATH MODE   change PATH's mode (octal)
//	mkdir PATH        create the directory PATH
//	ln TARGET LINK    create the symbolic link LINK pointing at TARGET
//	now               print the wall clock, in nanoseconds since 1970
//	random N          print N bytes from crypto/rand, in hex
//	exit N            exit with status N
//	stderr TEXT       print TEXT to stderr
//	dial ADDR         open a TCP connection to ADDR (the sandbox should refuse)
//	panic             panic
//
// A failed operation prints the error to stderr and exits with status 1; a
// usage error exits with status 2.
package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

const usage = "usage: wasicmd echo|upper|args|env|ls|cat|write|rm|mv|chmod|mkdir|ln|now|random|exit|stderr|dial|panic [ARGS...]"

// arity is the number of arguments each fixed-arity subcommand takes.
var arity = map[string]int{
	"upper": 0, "env": 0, "ls": 1, "cat": 1, "write": 2, "rm": 1, "mv": 2,
	"chmod": 2, "mkdir": 1, "ln": 2, "now": 0, "random": 1, "exit": 1, "stderr": 1, "dial": 1, "panic": 0,
}

func main() {
	if len(os.Args) < 2 {
		usageExit()
	}
	cmd, args := os.Args[1], os.Args[2:]
	if n, ok := arity[cmd]; ok && len(args) != n {
		usageExit()
	}
	switch cmd {
	case "echo":
		fmt.Println(strings.Join(args, " "))
	case "upper":
		in, err := io.ReadAll(os.Stdin)
		check(err)
		_, err = os.Stdout.Write(bytes.ToUpper(in))
		check(err)
	case "args":
		for _, a := range os.Args[1:] {
			fmt.Println(a)
		}
	case "env":
		env := os.Environ()
		slices.Sort(env)
		for _, kv := range env {
			fmt.Println(kv)
		}
	case "ls":
		entries, err := os.ReadDir(args[0])
		check(err)
		for _, e := range entries {
			fmt.Println(e.Name())
		}
	case "cat":
		b, err := os.ReadFile(args[0])
		check(err)
		_, err = os.Stdout.Write(b)
		check(err)
	case "write":
		check(os.WriteFile(args[0], []byte(args[1]), 0o644))
	case "rm":
		check(os.Remove(args[0]))
	case "mv":
		check(os.Rename(args[0], args[1]))
	case "chmod":
		mode, err := strconv.ParseUint(args[1], 8, 32)
		check(err)
		check(os.Chmod(args[0], os.FileMode(mode)))
	case "mkdir":
		check(os.Mkdir(args[0], 0o755))
	case "ln":
		check(os.Symlink(args[0], args[1]))
	case "now":
		fmt.Println(time.Now().UnixNano())
	case "random":
		n, err := strconv.Atoi(args[0])
		check(err)
		b := make([]byte, n)
		_, err = rand.Read(b)
		check(err)
		fmt.Println(hex.EncodeToString(b))
	case "exit":
		code, err := strconv.Atoi(args[0])
		check(err)
		os.Exit(code)
	case "stderr":
		fmt.Fprintln(os.Stderr, args[0])
	case "dial":
		conn, err := net.Dial("tcp", args[0])
		check(err)
		conn.Close()
	case "panic":
		panic("boom")
	default:
		usageExit()
	}
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "wasicmd:", err)
		os.Exit(1)
	}
}

func usageExit() {
	fmt.Fprintln(os.Stderr, usage)
	os.Exit(2)
}

package main

import (
	"github.com/spf13/pflag"

	"github.com/wasmpool/wasmpool/capability/httpcap"
	"github.com/wasmpool/wasmpool/engine"
)

// allowHostFlag is --allow-host, of run, map, batch and worker: the hosts a
// task's guest may reach over HTTP (guest.HTTP), through the built-in HTTP
// capability.
type allowHostFlag struct {
	allowHosts []string
}

func (f *allowHostFlag) add(fs *pflag.FlagSet, usage string) {
	fs.StringArrayVar(&f.allowHosts, "allow-host", nil, usage)
}

const allowHostUsage = "let the guest make HTTP requests (guest.HTTP) to this host: a name, *.domain, or an IP address " +
	"(repeat; a name resolving to a loopback or private address is refused: name the address itself)"

func (f *allowHostFlag) check() error {
	return checkPatterns("--allow-host", f.allowHosts)
}

func checkPatterns(what string, patterns []string) error {
	for _, p := range patterns {
		if err := httpcap.CheckPattern(p); err != nil {
			return usagef("%s: %v", what, err)
		}
	}
	return nil
}

// grant lets t reach hosts over HTTP (none: t is granted nothing).
func grantHosts(t *engine.Task, hosts []string) {
	if len(hosts) == 0 {
		return
	}
	t.Grants = []string{httpcap.Name}
	t.GrantArgs = map[string][]string{httpcap.Name: hosts}
}

// clientCapabilities are what the engine of run, map and batch (and their
// worker processes) provides: HTTP, to the hosts each task names.
func clientCapabilities() []engine.Capability {
	return []engine.Capability{httpcap.New(httpcap.Policy{})}
}

// workerCapabilities are a cluster worker's: HTTP only with --allow-host,
// and then only to those hosts, whatever a task asks for (a task granting
// HTTP on a worker without it is refused: engine.ErrNoCapability).
func (f *allowHostFlag) workerCapabilities() []engine.Capability {
	if len(f.allowHosts) == 0 {
		return nil
	}
	return []engine.Capability{httpcap.New(httpcap.Policy{AllowHosts: f.allowHosts})}
}

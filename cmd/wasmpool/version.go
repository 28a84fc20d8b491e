package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is set at link time (-ldflags "-X main.version=v1.2.3"); otherwise
// it comes from the build info.
var version = ""

func (a *app) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the versions of wasmpool, wazero and Go",
		Args:  exactArgs(0, ""),
		RunE: func(*cobra.Command, []string) error {
			a.started("")
			v, wazero, rev := buildVersions()
			if rev != "" {
				v += " (" + rev + ")"
			}
			_, err := fmt.Fprintf(a.stdout, "wasmpool %s\nwazero   %s\ngo       %s %s/%s\n",
				v, wazero, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return err
		},
	}
}

// buildVersions reads wasmpool's version and VCS revision and wazero's
// version from the build info.
func buildVersions() (self, wazero, revision string) {
	self, wazero = "(devel)", "unknown"
	if version != "" {
		self = version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return self, wazero, ""
	}
	if version == "" && info.Main.Version != "" {
		self = info.Main.Version
	}
	for _, d := range info.Deps {
		if d.Path == "github.com/tetratelabs/wazero" {
			wazero = d.Version
			if d.Replace != nil {
				wazero = d.Replace.Version + " (replaced)"
			}
		}
	}
	var dirty bool
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
			if len(revision) > 12 {
				revision = revision[:12]
			}
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if revision != "" && dirty {
		revision += "+dirty"
	}
	return self, wazero, revision
}

package main

import (
	"strings"

	"github.com/wasmpool/wasmpool/cluster"
)

// parseLabels reads worker --label KEY=VALUE flags: a malformed or
// repeated one is a usage error, said before the worker connects.
func parseLabels(flags []string) (map[string]string, error) {
	if len(flags) == 0 {
		return nil, nil
	}
	labels := make(map[string]string, len(flags))
	for _, fl := range flags {
		k, v, ok := strings.Cut(fl, "=")
		if !ok || k == "" {
			return nil, usagef("--label %q: want KEY=VALUE, such as zone=eu-west-1", fl)
		}
		if old, dup := labels[k]; dup {
			return nil, usagef("--label %s=%s: %s is already %q", k, v, k, old)
		}
		labels[k] = v
	}
	if err := cluster.CheckLabels(labels); err != nil {
		return nil, usagef("--label: %v", strings.TrimPrefix(err.Error(), "cluster: "))
	}
	return labels, nil
}

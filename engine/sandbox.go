package engine

import (
	"bytes"
	"context"
	cryptorand "crypto/rand"
	"io"
	"maps"
	mathrand "math/rand"
	"slices"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/sys"
)

// moduleConfig is the instance's sandbox. ctx is the call's: a streamed
// stdin gives up waiting when it ends.
func (inst *Instance) moduleConfig(ctx context.Context, t *Task) (wazero.ModuleConfig, error) {
	e := inst.rt.e
	// Every With clones the config: start from the engine's prepared base,
	// which holds everything that is the same for every instance.
	cfg := e.base.
		WithArgs(append([]string{t.Module.name}, t.Args...)...).
		WithStderr(&inst.st.stderr)
	if t.Func == "" {
		var stdin io.Reader
		if t.Stdin != nil {
			stdin = newStreamReader(ctx, t.Stdin)
		} else {
			stdin = bytes.NewReader(t.Input)
		}
		cfg = cfg.WithStdout(&inst.st.output).WithStdin(stdin)
	} else {
		// An export's stdout is diagnostics: its result goes through the ABI.
		cfg = cfg.WithStdout(&inst.st.stderr)
	}
	// In name order: the guest's environ must not change from run to run
	// with Go's map order.
	for _, k := range slices.Sorted(maps.Keys(t.Env)) {
		cfg = cfg.WithEnv(k, t.Env[k])
	}
	if len(t.Mounts) > 0 {
		fsc, err := fsConfig(t.Mounts)
		if err != nil {
			return nil, err
		}
		cfg = cfg.WithFSConfig(fsc)
	}
	if d := e.cfg.Deterministic; d != nil {
		// A fresh source per instance: each one replays the same stream.
		cfg = cfg.WithRandSource(mathrand.New(mathrand.NewSource(d.Seed)))
	} else {
		// The guest's sleeps end when its call is stopped (see
		// callState.sleep). wazero's hook takes no context, so it is bound
		// to the instance here, not in the engine's base config.
		cfg = cfg.WithNanosleep(inst.st.sleep)
	}
	return cfg, nil
}

// newBaseConfig returns the part of every instance's sandbox that does not
// depend on the task: no name (anonymous instances never clash, however many
// run at once), the clocks and random source of the engine's Config, and no
// start function: the engine calls _start or _initialize itself, as a call
// of its own, so that it is metered and stopped like any other.
func newBaseConfig(cfg Config) wazero.ModuleConfig {
	base := wazero.NewModuleConfig().WithName("").WithStartFunctions()
	if d := cfg.Deterministic; d != nil {
		wall := d.WalltimeUnixNano
		return base.WithWalltime(func() (int64, int32) { return wall / 1e9, int32(wall % 1e9) }, sys.ClockResolution(1))
	}
	// Sleeps are set per instance: see moduleConfig.
	return base.WithSysWalltime().WithSysNanotime().WithRandSource(cryptorand.Reader)
}

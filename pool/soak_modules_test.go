//go:build soak

package pool_test

import (
	"context"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/internal/testmod"
	"github.com/wasmpool/wasmpool/pool"
)

// The many-modules soak (make soak; build tag soak): WASMPOOL_SOAK_MODULES
// (default 10,000) distinct modules, one task each, through one long-lived
// engine and pool of each mode, configured as a process would leave it (the
// engine's default MaxModules). What a process sent new plugins for weeks
// keeps must not grow with them: the RSS at the end must stay within
// soakModulesSlack of the RSS once the engine's cache is full.

// soakModulesSlack is what the RSS may grow past its level once the cache
// is full: the Go heap and the allocator's pages settle in steps of a few
// MiB (measured: +1.7 MiB Threads, -0.2 MiB Processes over 8,000 modules
// more), while a module kept costs 16 to 35 KiB, so a leak of every one
// (120 to 220 MiB over 10,000, measured without the bound) cannot hide in it.
const soakModulesSlack = 24 << 20

// settledRSS is the process's RSS with the Go heap collected and given back.
func settledRSS() uint64 {
	runtime.GC()
	debug.FreeOSMemory()
	return rssBytes()
}

func TestSoakManyModules(t *testing.T) {
	n := 10000
	if s := os.Getenv("WASMPOOL_SOAK_MODULES"); s != "" {
		var err error
		n, err = strconv.Atoi(s)
		require.NoError(t, err)
	}
	// The cache fills at DefaultMaxModules; the plateau is measured past
	// twice that, once the first evicted modules' pages were reused.
	plateau := min(2*engine.DefaultMaxModules, n/2)
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			ctx := context.Background()
			e, err := engine.New(ctx, engine.Config{})
			require.NoError(t, err)
			defer func() { require.NoError(t, e.Close(ctx)) }()
			p, err := pool.New(e, pool.Config{Mode: mode, Workers: 2})
			require.NoError(t, err)
			defer func() { require.NoError(t, p.Close()) }()

			start := time.Now()
			before := settledRSS()
			var base uint64
			for i := range n {
				m, err := e.Compile(ctx, testmod.Const(uint32(i)))
				require.NoError(t, err, "module %d", i)
				res, err := p.Submit(ctx, engine.Task{Module: m, Func: "run", Params: []uint64{}}).Result(ctx)
				require.NoError(t, err, "module %d", i)
				require.Equal(t, []uint64{uint64(uint32(i))}, res.Values, "module %d", i)
				done := i + 1
				if done == plateau {
					base = settledRSS()
				}
				if done == 500 || done%(max(n/10, 1)) == 0 {
					s := e.ModuleStats()
					t.Logf("%6d modules, %5.0f/s: RSS %4d MiB; resident %d, codes %d, compiled %d, warm %d",
						done, float64(done)/time.Since(start).Seconds(), settledRSS()>>20,
						s.Modules, s.Codes, s.CompiledModules, p.Stats().WarmInstances)
				}
			}
			end := settledRSS()
			s := e.ModuleStats()
			t.Logf("RSS: %d MiB before, %d MiB at %d modules (the cache full), %d MiB after %d: %+.1f MiB",
				before>>20, base>>20, plateau, end>>20, n, (float64(end)-float64(base))/(1<<20))
			assert.LessOrEqual(t, s.Modules, engine.DefaultMaxModules)
			assert.LessOrEqual(t, s.Codes, engine.DefaultMaxModules+p.Workers())
			assert.Less(t, end, base+soakModulesSlack, "RSS grew from %d MiB to %d MiB", base>>20, end>>20)
		})
	}
}

package pool_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/future"
	"github.com/wasmpool/wasmpool/pool"
)

// Tasks running side by side with different mounts and environments each
// see exactly their own: commands, and exports on warm instances (Threads),
// which are only reused for a task with the very same sandbox.
func TestConcurrentTasksSeeOnlyTheirOwnSandbox(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			e := testEngine(t, engine.Config{}, nil)
			p := newPool(t, e, pool.Config{Mode: mode, Workers: 2})
			cmd, hostile := goModule(t, e, "wasicmd"), goModule(t, e, "hostile")
			dirs := map[string]string{}
			for _, who := range []string{"A", "B"} {
				dir := t.TempDir()
				require.NoError(t, os.WriteFile(filepath.Join(dir, "who.txt"), []byte(who), 0o644))
				require.NoError(t, os.WriteFile(filepath.Join(dir, "only-"+who+".txt"), nil, 0o644))
				dirs[who] = dir
			}
			ctx := within(t)
			type check struct {
				f    *future.Future[engine.Result]
				want string
			}
			var checks []check
			for i := range 8 {
				who := "AB"[i%2 : i%2+1]
				sandbox := engine.Task{
					Env:    map[string]string{"WHO": who},
					Mounts: []engine.Mount{{HostPath: dirs[who], GuestPath: "/data"}},
				}
				for _, c := range []struct {
					task engine.Task
					want string
				}{
					{engine.Task{Module: cmd, Args: []string{"cat", "/data/who.txt"}}, who},
					{engine.Task{Module: cmd, Args: []string{"ls", "/data"}}, "only-" + who + ".txt\nwho.txt"},
					{engine.Task{Module: cmd, Args: []string{"env"}}, "WHO=" + who},
					{engine.Task{Module: hostile, Func: "readfile", Input: []byte("/data/who.txt")}, who},
					{engine.Task{Module: hostile, Func: "printenv"}, "WHO=" + who},
				} {
					task := c.task
					task.Env, task.Mounts = sandbox.Env, sandbox.Mounts
					checks = append(checks, check{p.Submit(ctx, task), c.want})
				}
			}
			for i, c := range checks {
				res, err := c.f.Result(ctx)
				require.NoError(t, err, "task %d", i)
				assert.Equal(t, c.want, strings.TrimSpace(string(res.Output)), "task %d", i)
			}
		})
	}
}

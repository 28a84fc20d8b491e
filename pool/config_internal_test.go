package pool

import (
	"reflect"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/wasmpool/wasmpool/internal/wire/wiretest"
	"github.com/wasmpool/wasmpool/internal/workerproc"
)

// appliedHere are the fields of Config that never cross to a worker
// process, and why: every other field must reach the pool inside it
// (workerproc.PoolConfig, whose own round trip workerproc's tests check).
// A field added to Config fails TestEveryConfigFieldReachesTheWorkerProcesses
// until it is carried or listed here.
var appliedHere = map[string]string{
	"Workers":       "the workers are this side's: each worker process runs one",
	"QueueSize":     "the queue is this side's",
	"TaskTimeout":   "applied to each task by Submit, and carried as Task.Timeout (wire.EncodeTask)",
	"TaskFuel":      "applied to each task by Submit, and carried as Task.Fuel (wire.EncodeTask)",
	"Grants":        "applied to each task by Submit, and carried as Task.Grants (wire.EncodeTask)",
	"GrantArgs":     "applied to each task by Submit, and carried as Task.GrantArgs (wire.EncodeTask)",
	"Isolation":     "what starts the worker processes",
	"WorkerCommand": "what starts the worker processes",
	"KillGrace":     "this side kills, after the grace",
	"ProcessLimits": "carried as the rlimits the worker process sets on itself (Config.childLimits, hello's limits)",
	"OnTaskDone":    "this side settles every task's future, and tells the observer",
}

func TestEveryConfigFieldReachesTheWorkerProcesses(t *testing.T) {
	var c Config
	wiretest.Fill(&c)
	pc := reflect.ValueOf(c.childPool())
	ct := reflect.TypeOf(c)
	used := map[string]bool{}
	for i := range ct.NumField() {
		name := ct.Field(i).Name
		if _, ok := appliedHere[name]; ok {
			continue
		}
		f := pc.FieldByName(name)
		if !f.IsValid() {
			t.Errorf("Config.%s reaches no worker process: carry it in workerproc.PoolConfig, or say in appliedHere why not", name)
			continue
		}
		used[name] = true
		want := reflect.ValueOf(c).Field(i)
		if want.Kind() == reflect.Int && f.Kind() == reflect.Uint8 { // Mode travels as a byte
			assert.Equal(t, want.Int(), int64(f.Uint()), "Config.%s", name)
			continue
		}
		assert.Equal(t, want.Interface(), f.Interface(), "Config.%s", name)
	}
	for i := range pc.NumField() {
		assert.True(t, used[pc.Type().Field(i).Name], "PoolConfig.%s comes from no Config field", pc.Type().Field(i).Name)
	}
	var pcfg workerproc.PoolConfig
	assert.Equal(t, reflect.TypeOf(pcfg).NumField(), len(used))
}

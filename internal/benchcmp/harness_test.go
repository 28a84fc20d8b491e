package benchcmp

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"go.uber.org/goleak"

	"github.com/wasmpool/wasmpool/pool"
)

func TestMain(m *testing.M) {
	// Worker-process pools start this test binary as their worker
	// processes, and the RSS measure re-runs it as its child.
	pool.ServeChild()
	RunChildIfAsked()
	goleak.VerifyTestMain(m)
}

func TestPercentileAndBatchSize(t *testing.T) {
	var s []time.Duration
	for i := 1; i <= 100; i++ {
		s = append(s, time.Duration(i))
	}
	assert.Equal(t, time.Duration(50), percentile(s, 50))
	assert.Equal(t, time.Duration(99), percentile(s, 99))
	assert.Equal(t, time.Duration(1), percentile(s[:1], 99))
	assert.Equal(t, time.Duration(0), percentile(nil, 50))

	b := budget{time: time.Second}
	assert.Equal(t, 1000, batchSize(b, time.Microsecond, 1), "capped")
	assert.Equal(t, 4, batchSize(b, time.Second, 2), "at least two per worker")
	assert.Equal(t, 100, batchSize(b, 500*time.Microsecond, 1), "a twentieth of the budget")
}

func TestPythonMissingIsANote(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	var rep Report
	runPython(context.Background(), Quick(), workloads(Quick()), &rep, newProgress(nil))
	assert.Empty(t, rep.Cells)
	assert.Equal(t, []string{"Python not measured: python3 is not on PATH (its columns are empty)"}, rep.Notes)
}

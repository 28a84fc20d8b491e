package workerproc

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/internal/wire"
	"github.com/wasmpool/wasmpool/internal/wire/wiretest"
)

// Everything a hello holds reaches the worker process: every field of the
// engine's Config (but the host modules' Go functions) and of PoolConfig,
// Init's task whole (but its module, sent apart).
func TestHelloCarriesEveryField(t *testing.T) {
	in := helloMsg{initModule: &moduleMsg{id: initModuleID, name: "m.wasm", digest: "abc", wasm: []byte("\x00asm")},
		limits: Limits{AddressSpace: 1 << 30, CPUSeconds: -1}}
	unfilled := wiretest.Fill(&in.engine)
	assert.Equal(t, []string{"Config.HostModules[0].Define", "Config.Capabilities[0].Funcs.value"}, unfilled)
	unfilled = wiretest.Fill(&in.pool)
	assert.ElementsMatch(t, []string{"PoolConfig.Init.Stdin", "PoolConfig.Init.Stdout", "PoolConfig.Init.Stderr"}, unfilled)
	in.pool.Init.Module = nil
	var enc wire.Encoder
	in.encode(&enc)
	var out helloMsg
	require.NoError(t, decodeHello(wire.NewDecoder(enc.Bytes()), &out))
	assert.Equal(t, uint64(protocolVersion), out.version)
	in.version = protocolVersion
	assert.Empty(t, wiretest.Lost(in.pool, out.pool))
	assert.Equal(t, []string{"Config.Capabilities[0].Funcs"}, wiretest.Lost(in.engine, out.engine),
		"every field of the engine's Config (the Go functions of host modules and capabilities stay behind)")
	assert.Equal(t, in.limits, out.limits)
	assert.Equal(t, in.initModule.wasm, out.initModule.wasm)
}

func TestBatchAndResultRoundTrip(t *testing.T) {
	in := []taskMsg{
		{id: 9, moduleID: 3, task: engine.Task{Func: "f"}},
		{id: 10, moduleID: 3, task: engine.Task{Func: "raw", Params: []uint64{}, Args: []string{"a", ""},
			Env: map[string]string{"K": "V"}, Mounts: []engine.Mount{{HostPath: "/h", GuestPath: "/g", ReadOnly: true}},
			Timeout: time.Second, Fuel: 1000, Input: []byte("in")}},
		{id: 11, moduleID: 4, task: engine.Task{Params: []uint64{1, 1 << 63}, Input: []byte{0, 1}}},
	}
	var enc wire.Encoder
	var payload []byte
	for _, p := range batchParts(&enc, in) {
		payload = append(payload, p...)
	}
	out, err := decodeBatch(wire.NewDecoder(payload))
	require.NoError(t, err)
	assert.Equal(t, in, out)

	r := resultMsg{id: 3, res: engine.Result{Output: []byte("out"), Stderr: []byte("err"), Values: []uint64{7}, ExitCode: 4,
		Duration: time.Millisecond, Fuel: 99}, broken: true, instancesBuilt: 5, workerRestarts: 6, cpu: time.Second}
	enc.Reset()
	var scratch [binary.MaxVarintLen64]byte
	payload = nil
	for _, p := range r.parts(&enc, &scratch) {
		payload = append(payload, p...)
	}
	var back resultMsg
	require.NoError(t, decodeResult(wire.NewDecoder(payload), &back))
	assert.Equal(t, r, back)
}

func TestVersionsTellEachOtherApart(t *testing.T) {
	var enc wire.Encoder
	enc.String(protocolMagic)
	enc.Uvarint(protocolVersion + 1)
	enc.String("whatever a later version sends")
	var r readyMsg
	require.NoError(t, decodeReady(wire.NewDecoder(enc.Bytes()), &r))
	assert.Equal(t, uint64(protocolVersion+1), r.version)

	enc.Reset()
	enc.String("not-wasmpool")
	assert.ErrorContains(t, decodeReady(wire.NewDecoder(enc.Bytes()), &r), "not the wasmpool worker protocol")
}

// FuzzChildFrames decodes arbitrary payloads as each frame a worker process
// can send: a worker process that goes wrong must never panic the pool.
func FuzzChildFrames(f *testing.F) {
	var enc wire.Encoder
	var scratch [binary.MaxVarintLen64]byte
	var seed []byte
	for _, p := range (&resultMsg{id: 1, res: engine.Result{Output: []byte("x"), Values: []uint64{1}},
		err: &engine.Error{Module: "m", Err: &engine.TrapError{Kind: engine.TrapOutOfBounds}}}).parts(&enc, &scratch) {
		seed = append(seed, p...)
	}
	f.Add(seed)
	enc.Reset()
	(&readyMsg{pid: 1, err: "no"}).encode(&enc)
	f.Add(enc.Bytes())
	enc.Reset()
	(&loadedMsg{id: 2, err: &engine.Error{Module: "m", Err: &engine.ExitError{Code: 1}}}).encode(&enc)
	f.Add(enc.Bytes())
	f.Fuzz(func(t *testing.T, payload []byte) {
		var r resultMsg
		if decodeResult(wire.NewDecoder(payload), &r) == nil && r.err != nil {
			_ = r.err.Error()
		}
		var l loadedMsg
		_ = decodeLoaded(wire.NewDecoder(payload), &l)
		var h readyMsg
		_ = decodeReady(wire.NewDecoder(payload), &h)
	})
}

// FuzzPoolFrames does the same for what the pool sends, as the worker
// process reads it.
func FuzzPoolFrames(f *testing.F) {
	var enc wire.Encoder
	var seed []byte
	for _, p := range batchParts(&enc, []taskMsg{{id: 1, moduleID: 2, task: engine.Task{Func: "f", Params: []uint64{1}, Env: map[string]string{"a": "b"}}}}) {
		seed = append(seed, p...)
	}
	f.Add(seed)
	enc.Reset()
	(&helloMsg{pool: PoolConfig{Init: &engine.Task{}}}).encode(&enc)
	f.Add(enc.Bytes())
	f.Fuzz(func(t *testing.T, payload []byte) {
		_, _ = decodeBatch(wire.NewDecoder(payload))
		var h helloMsg
		_ = decodeHello(wire.NewDecoder(payload), &h)
		var c cancelMsg
		_ = decodeCancel(wire.NewDecoder(payload), &c)
		var m moduleMsg
		_ = decodeModule(payload, &m)
	})
}

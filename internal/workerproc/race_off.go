//go:build !race

package workerproc

// raceShadowFactor: see race_on.go.
const raceShadowFactor = 1

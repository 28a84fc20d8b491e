//go:build !race

package pool

// raceShadowFactor: see race_on.go.
const raceShadowFactor = 1

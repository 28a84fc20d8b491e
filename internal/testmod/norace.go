//go:build !race

package testmod

// raceEnabled: this binary was built with -race.
const raceEnabled = false

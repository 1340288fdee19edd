//go:build !race

package ringbuf

// raceEnabled scales the heavier tests down under the race detector.
const raceEnabled = false

//go:build race

package fuzz

// raceEnabled: the race detector is on (its campaigns run ten times
// slower; the zoo's run without it, `make test`'s zoo step).
const raceEnabled = true

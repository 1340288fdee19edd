// Package fuzz attacks the model: trace generators, property checkers,
// shrinking and the campaigns behind `splicecheck check`.
//
// Generators are rapid generators, so a failing trace shrinks for free and
// a campaign is reproducible from its seed (Generator.Example(seed)). A
// generated trace is always valid: it parses, and every name it uses is
// defined first. It is not always meaningful on every profile (a `pair` on a
// mainline kernel fails with -EOPNOTSUPP): backends report what they do.
//
// The package imports trace, model and netstack; it never imports
// kernelshim (a test enforces it), so differential runs against the kernel
// live where both are reachable (cmd/splicecheck, internal/crosscheck).
package fuzz

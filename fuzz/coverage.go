package fuzz

import "github.com/splicecheck/splicecheck/model"

// coverageOf is the model's coverage of r's run under test: nil when the
// backend is not the model, or the run failed (no Stats).
func coverageOf(r *Execution) *model.Coverage {
	if r.Stats == nil {
		return nil
	}
	return &r.Stats.Coverage
}

package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/splicecheck/splicecheck/fuzz"
	"github.com/splicecheck/splicecheck/internal/timeline"
	"github.com/splicecheck/splicecheck/trace"
)

// The HTML timeline of a run (internal/timeline): `run --html FILE`, and
// one beside each counterexample `check` (or `merge`) writes.

// keepsTimeline reports whether the named backend keeps a run's event
// log (trace.Options.Timeline): the model backends, as for copy
// accounting.
func keepsTimeline(name string) bool { return keepsStats(name) }

// checkHTMLFlag validates run's --html for the backend and the traces.
func checkHTMLFlag(html, backend string, traces int) error {
	switch {
	case html == "":
	case !keepsTimeline(backend):
		return usagef("--html: the timeline is the model's; backend %q keeps none (use --backend model or netstack)", backend)
	case traces > 1:
		return usagef("--html: one trace at a time (got %d)", traces)
	}
	return nil
}

// writeTimeline renders page to file.
func writeTimeline(file string, page timeline.Page) error {
	page.Version = versionString()
	var b bytes.Buffer
	if err := timeline.Render(&b, page); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	return os.WriteFile(file, b.Bytes(), 0o644)
}

// verdictOf is the page's verdict on a counterexample of property: v,
// nil when it holds.
func verdictOf(property string, v *fuzz.Violation) *timeline.Verdict {
	vd := &timeline.Verdict{Property: property}
	if v != nil {
		vd.Violation, vd.Signature, vd.Line = v.Error(), v.Signature(), v.Line
	}
	return vd
}

// timelineName is the page beside counterexample file: FILE.trace's is
// FILE.html.
func timelineName(file string) string {
	return strings.TrimSuffix(file, ".trace") + ".html"
}

// timelineBudget bounds the replay of one counterexample for its page
// after a campaign, an interrupted one included (the campaign's runs were
// within its --run-timeout).
const timelineBudget = 30 * time.Second

// writeTimelines writes the page of each counterexample file the
// campaign wrote, beside it (timelineName), on the backend it ran on
// with the mutations its header names, marked where the campaign's
// violation shows; cr.timelines records them. The campaign's backend
// must keep a timeline (a kernel's does not: no page). A page that
// cannot be made is reported on stderr and skipped: the counterexample
// stands without it.
func (cr *checkReport) writeTimelines(ctx context.Context) {
	if !keepsTimeline(cr.replay.backend) {
		return
	}
	ctx = context.WithoutCancel(ctx) // after an interrupt too: the counterexamples are written
	for _, ce := range cr.counterexamples() {
		html := timelineName(ce.file)
		rctx, cancel := context.WithTimeout(ctx, timelineBudget)
		err := cr.counterexampleTimeline(rctx, ce.file, ce.text, ce.v, html)
		cancel()
		if err != nil {
			fmt.Fprintf(cr.e.stderr, "splicecheck: no timeline of %s: %s\n", ce.file, oneLine(err.Error()))
			continue
		}
		if cr.timelines == nil {
			cr.timelines = map[string]string{}
		}
		cr.timelines[ce.file] = html
	}
}

// counterexampleFile is one counterexample file a campaign wrote: its
// name, its text and, for a cell's own counterexample, its violation
// (nil for the in-flight form).
type counterexampleFile struct {
	file string
	text []byte
	v    *fuzz.Violation
}

// counterexamples lists the counterexample files the campaign wrote, in
// the order of its cells: each cell's, then its in-flight form's.
func (cr *checkReport) counterexamples() []counterexampleFile {
	var out []counterexampleFile
	for _, o := range cr.outs {
		for _, ce := range []counterexampleFile{{o.File, o.FileText, o.Violation}, {o.InFlightFile, o.InFlightText, nil}} {
			if ce.file != "" {
				out = append(out, ce)
			}
		}
	}
	return out
}

// counterexampleTimeline replays the counterexample file (its text)
// with its event log and writes its page to html, marked where v shows
// (nil: as the replay judges it).
func (cr *checkReport) counterexampleTimeline(ctx context.Context, file string, text []byte, v *fuzz.Violation, html string) error {
	t, err := trace.Parse(file, text)
	if err != nil {
		return err
	}
	h, ok := fuzz.ReadHeader(text)
	if !ok {
		return fmt.Errorf("no counterexample header")
	}
	cfg := backendConfig{twoHost: cr.replay.twoHost}
	r, rv, name, err := replayRecorded(ctx, t, h, cr.replay.backend, cfg, true)
	if err != nil {
		return err
	}
	if v == nil {
		v = rv
	}
	return writeTimeline(html, timeline.Page{Trace: t, Timeline: r.Timeline, Backend: name, Profile: t.Profile,
		Verdict: verdictOf(h.Property, v)})
}

// replayRecorded runs counterexample t as its campaign did: on backend,
// the header's mutations planted unless cfg names others, with the
// campaign's liveness and provenance, and judges the property the
// header names (fuzz.Replay), with the run's event log when timeline is
// set. It returns the backend's name too.
func replayRecorded(ctx context.Context, t *trace.Trace, h fuzz.Header, backend string, cfg backendConfig, timeline bool) (*fuzz.Execution, *fuzz.Violation, string, error) {
	if len(cfg.mutations) == 0 {
		cfg.mutations = h.Mutations
	}
	cfg.campaign = true
	b, err := openBackend("--backend", backend, cfg)
	if err != nil {
		return nil, nil, "", err
	}
	replay := fuzz.Replay
	if timeline {
		replay = fuzz.ReplayTimeline
	}
	r, v, err := replay(ctx, b, t, h.Property)
	if err != nil {
		return nil, nil, "", inFile(t, err)
	}
	return r, v, b.Name(), nil
}

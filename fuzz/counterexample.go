package fuzz

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/splicecheck/splicecheck/trace"
)

// Header is the head of a counterexample file: what `splicecheck run`
// needs to judge it again (Replay) and what a reader needs to know where
// it came from. It is written as "# key: value" comment lines before the
// trace, so the file is an ordinary trace too.
type Header struct {
	Property  string   // the property the trace violates
	Signature string   // the violation's kind@site
	Profile   string   // the profile it was found on
	Seed      uint64   // the campaign seed of the generated trace
	Mutations []string // the mutations planted in the model
	Version   string   // the splicecheck that found it
	Violation string   // the violation, its line numbers this file's
}

const headerTitle = "# splicecheck counterexample: `splicecheck run FILE` judges it again and exits 1 while it fails"

// headerLines is the number of lines Header.Format writes.
const headerLines = 8

// Format renders h as headerLines comment lines.
func (h Header) Format() string {
	var b strings.Builder
	b.WriteString(headerTitle + "\n")
	kv := func(k, v string) { fmt.Fprintf(&b, "# %s: %s\n", k, v) }
	kv("property", h.Property)
	kv("signature", h.Signature)
	kv("profile", h.Profile)
	kv("seed", strconv.FormatUint(h.Seed, 10))
	kv("mutations", strings.Join(h.Mutations, ","))
	kv("version", h.Version)
	kv("violation", strings.ReplaceAll(h.Violation, "\n", " "))
	return b.String()
}

// ReadHeader reads the header of a counterexample file; ok is false when
// src has none (an ordinary trace).
func ReadHeader(src []byte) (h Header, ok bool) {
	sc := bufio.NewScanner(bytes.NewReader(src))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	if !sc.Scan() || sc.Text() != headerTitle {
		return Header{}, false
	}
	for i := 1; i < headerLines && sc.Scan(); i++ {
		k, v, found := strings.Cut(strings.TrimPrefix(sc.Text(), "# "), ": ")
		if !found {
			continue
		}
		switch k {
		case "property":
			h.Property = v
		case "signature":
			h.Signature = v
		case "profile":
			h.Profile = v
		case "seed":
			h.Seed, _ = strconv.ParseUint(v, 10, 64)
		case "mutations":
			if v != "" {
				h.Mutations = strings.Split(v, ",")
			}
		case "version":
			h.Version = v
		case "violation":
			h.Violation = v
		}
	}
	return h, h.Property != ""
}

// Replay runs t as a campaign does (on sut, with the base profile's run
// for the transparent property) and judges it against property; it
// returns the run and its violation, nil when the property holds. sut
// should be the model as campaigns make it (NewCampaignModel), or the
// backend the campaign ran: a property that needs what such a backend
// records (provenance tags, liveness) cannot fail on another.
func Replay(ctx context.Context, sut trace.Backend, t *trace.Trace, property string) (*Execution, *Violation, error) {
	return replay(ctx, sut, t, property, false)
}

// ReplayTimeline is Replay with the run's event log on a backend that
// keeps one (Execution.Timeline; the model's), for the page that shows it.
func ReplayTimeline(ctx context.Context, sut trace.Backend, t *trace.Trace, property string) (*Execution, *Violation, error) {
	return replay(ctx, sut, t, property, true)
}

func replay(ctx context.Context, sut trace.Backend, t *trace.Trace, property string, timeline bool) (*Execution, *Violation, error) {
	pr, ok := PropertyByName(property)
	if !ok {
		return nil, nil, fmt.Errorf("%w: unknown property %q", ErrCampaign, property)
	}
	r := runExecution(ctx, sut, nil, 0, t, timeline)
	if ctx.Err() != nil {
		return nil, nil, ctx.Err()
	}
	return r, pr.Judge(r), nil
}

// writeCounterexample renders ce, a counterexample of pr, as the file
// named file with its header (CounterexampleFile), writes it there when
// c.OutDir is set, and returns it.
func (c *Campaign) writeCounterexample(ctx context.Context, file string, pr Property, profile string, seed uint64, ce *trace.Trace, v *Violation, sut trace.Backend) ([]byte, error) {
	h := Header{Property: pr.Name, Signature: v.Signature(), Profile: profile, Seed: seed,
		Mutations: c.Mutations, Version: c.Version, Violation: v.Error()}
	text := CounterexampleFile(ctx, sut, file, h, "", ce)
	if c.OutDir == "" {
		return text, nil
	}
	if err := os.WriteFile(file, text, 0o644); err != nil {
		return nil, fmt.Errorf("%w: write counterexample: %w", ErrCampaign, err)
	}
	return text, nil
}

// CounterexampleFile renders ce as the counterexample file named file:
// h, then note (comment lines, each ending in a newline; "" for none),
// then ce with its directives. The file is parsed back and judged again
// on sut (Replay) as written, so that h.Violation's line numbers are the
// file's; if it no longer fails with h.Signature (it should: the format
// is faithful), h.Violation is kept as given.
func CounterexampleFile(ctx context.Context, sut trace.Backend, file string, h Header, note string, ce *trace.Trace) []byte {
	body := note + ce.Format()
	if parsed, err := trace.Parse(file, []byte(h.Format()+body)); err == nil {
		if _, rv, err := Replay(ctx, sut, parsed, h.Property); err == nil && rv != nil && rv.Signature() == h.Signature {
			h.Violation = rv.Error()
		}
	}
	return []byte(h.Format() + body)
}

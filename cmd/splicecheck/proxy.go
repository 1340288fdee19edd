package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/splicecheck/splicecheck/fuzz"
	"github.com/splicecheck/splicecheck/trace"
)

type jsonProxy struct {
	Trace     string           `json:"trace"`
	Backend   string           `json:"backend"`
	Vias      []string         `json:"vias"`
	Rows      []jsonProxyRow   `json:"rows"`
	Diffs     []fuzz.ProxyDiff `json:"named_differences,omitempty"`
	Violation string           `json:"violation,omitempty"`
}

type jsonProxyRow struct {
	Line    int      `json:"line"`
	Op      string   `json:"op"`
	Results []string `json:"results"`
}

func cmdProxy(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "proxy", "[flags] TRACE...",
		"Run each trace's proxy four ways (FreeBSD SO_SPLICE, an sk_skb verdict redirecting\n"+
			"to egress, splice(2) through a pipe, read/write in user space) and print what\n"+
			"the far ends see through each, side by side, with the differences the\n"+
			"mechanisms are known to have named. The trace builds its proxy in any one of\n"+
			"the four forms (docs/design.md). Exit status 1 when a difference has no name\n"+
			"(the proxy-parity property).")
	var ff formatFlags
	ff.register(fs, formatText, formatJSON)
	backend := fs.String("backend", "model", "backend to run on: model, netstack, kernel (the kernel has no SO_SPLICE: its default --via leaves it out)")
	via := fs.String("via", "", "comma-separated `FORMS` to compare, of so-splice, sockmap, splice, readwrite (default: all the backend runs)")
	var in traceInput
	in.register(fs)
	paths, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if err := ff.resolve(); err != nil {
		return err
	}
	if *backend != "model" && *backend != "netstack" && *backend != "kernel" {
		return usagef("--backend: want model, netstack or kernel, got %q", *backend)
	}
	vias, err := parseVias(*via, *backend)
	if err != nil {
		return err
	}
	traces, err := in.parseAll(ctx, paths, true)
	if err != nil {
		return err
	}
	b, err := openBackend("--backend", *backend, backendConfig{})
	if err != nil {
		return err
	}
	defer closeBackend(b)
	if err := startBackend(ctx, b); err != nil {
		return err
	}
	defer reportBackend(e, b)
	var out []jsonProxy
	failed := false
	for _, t := range traces {
		rep, err := fuzz.RunProxy(ctx, b, t, vias)
		if err != nil {
			if ctx.Err() != nil {
				return interrupted(ctx, fmt.Sprintf("%d of %s compared", len(out), plural(len(traces), "trace")), err)
			}
			return fmt.Errorf("%s: %w", t.File, err)
		}
		failed = failed || rep.Violation != nil
		if ff.format == formatJSON {
			out = append(out, toJSONProxy(t, *backend, rep))
			continue
		}
		printProxy(e, t, *backend, rep)
	}
	if ff.format == formatJSON {
		if err := writeJSON(e, out); err != nil {
			return err
		}
	}
	if failed {
		return errDiverged
	}
	return nil
}

// parseVias reads --via; empty is every form the backend runs.
func parseVias(s, backend string) ([]fuzz.Mech, error) {
	if s == "" {
		if backend == "kernel" {
			return []fuzz.Mech{fuzz.ViaSockmap, fuzz.ViaSplice, fuzz.ViaReadwrite}, nil
		}
		return []fuzz.Mech{fuzz.ViaSoSplice, fuzz.ViaSockmap, fuzz.ViaSplice, fuzz.ViaReadwrite}, nil
	}
	var vias []fuzz.Mech
	for _, name := range strings.Split(s, ",") {
		m, ok := fuzz.MechByName(name)
		if !ok {
			return nil, usagef("--via: unknown form %q (want so-splice, sockmap, splice, readwrite)", name)
		}
		vias = append(vias, m)
	}
	if len(vias) < 2 {
		return nil, usagef("--via: name at least two forms to compare, got %q", s)
	}
	return vias, nil
}

func printProxy(e *env, t *trace.Trace, backend string, rep *fuzz.ProxyReport) {
	fmt.Fprintf(e.stdout, "%s (%s): the far ends through each form\n", t.File, backend)
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	head := []string{"line", "op"}
	for _, v := range rep.Vias {
		head = append(head, v.String())
	}
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for _, r := range rep.Rows {
		cells := []string{fmt.Sprint(r.Line), r.Op}
		for _, res := range r.Results {
			cells = append(cells, res.String())
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	tw.Flush()
	for _, d := range rep.Diffs {
		fmt.Fprintf(e.stdout, "named: %s:%d: %s: %s (%s: EOF, %s: timeout)\n", t.File, d.Line, d.End, d.Why, d.User, d.Other)
	}
	if v := rep.Violation; v != nil {
		fmt.Fprintf(e.stdout, "proxy-parity fails: %s:%d: %s\n", t.File, v.Line, v)
		return
	}
	fmt.Fprintf(e.stdout, "proxy-parity holds: %s\n", plural(len(rep.Diffs), "named difference"))
}

func toJSONProxy(t *trace.Trace, backend string, rep *fuzz.ProxyReport) jsonProxy {
	j := jsonProxy{Trace: t.File, Backend: backend, Diffs: rep.Diffs}
	for _, v := range rep.Vias {
		j.Vias = append(j.Vias, v.String())
	}
	for _, r := range rep.Rows {
		row := jsonProxyRow{Line: r.Line, Op: r.Op}
		for _, res := range r.Results {
			row.Results = append(row.Results, res.String())
		}
		j.Rows = append(j.Rows, row)
	}
	if rep.Violation != nil {
		j.Violation = rep.Violation.Error()
	}
	return j
}

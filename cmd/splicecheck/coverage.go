package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/splicecheck/splicecheck/fuzz"
	"github.com/splicecheck/splicecheck/model"
)

// profileCoverage returns each profile's coverage, from the first of its
// outcomes (they share it), in the order profiles first appear.
func profileCoverage(outs []fuzz.Verdict) (profiles []string, cov map[string]*model.Coverage) {
	cov = map[string]*model.Coverage{}
	for _, o := range outs {
		if _, seen := cov[o.Profile]; !seen {
			profiles = append(profiles, o.Profile)
			cov[o.Profile] = o.Coverage
		}
	}
	return profiles, cov
}

// coverageCell is a profile's cell of the table's coverage row:
// "N/M mirrored functions", or "-" without model runs.
func coverageCell(c *model.Coverage) string {
	if c == nil || c.Runs() == 0 {
		return "-"
	}
	n, m := c.Count()
	s := fmt.Sprintf("%d/%d mirrored functions", n, m)
	if c.Partial() > 0 {
		s += " (" + plural(c.Partial(), "run") + " partial)"
	}
	return s
}

// printCoverageRow prints the table's coverage row for profiles.
func printCoverageRow(tw io.Writer, profiles []string, outs []fuzz.Verdict) {
	_, cov := profileCoverage(outs)
	fmt.Fprint(tw, "coverage")
	for _, p := range profiles {
		fmt.Fprintf(tw, "\t%s", coverageCell(cov[p]))
	}
	fmt.Fprintln(tw)
}

// printUnreached lists, for each profile, the mirrored functions of the
// profile its campaign did not reach: kernel name, Go name, model file.
func printUnreached(w io.Writer, outs []fuzz.Verdict) error {
	profiles, cov := profileCoverage(outs)
	for _, p := range profiles {
		c := cov[p]
		if c == nil || c.Runs() == 0 {
			fmt.Fprintf(w, "%s: no coverage (the backend is not the model)\n", p)
			continue
		}
		un := c.Unreached()
		_, m := c.Count()
		fmt.Fprintf(w, "%s: %d of %d mirrored functions not reached (%s):\n", p, len(un), m, plural(c.Runs(), "run"))
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, f := range un {
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", f.Kernel(), f.Go(), f.File())
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

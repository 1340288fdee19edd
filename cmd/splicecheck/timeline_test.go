package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/splicecheck/splicecheck/fuzz"
	"github.com/splicecheck/splicecheck/internal/testenv"
	"github.com/splicecheck/splicecheck/trace"
)

// The screenshots' window: wide enough for the label column and a
// plot of about a thousand pixels, tall enough for the lanes, the
// queues and the head of the ops table.
const screenshotW, screenshotH = 1400, 900

// The HTML timelines of three counterexamples, a lost wakeup, the
// loopback-splice RFC's ring/TCP reordering and a teardown leak, opened
// in headless Chromium: the page Chromium built (its DOM, after the
// page's script ran) marks the violated property at the step where it
// broke, which the test finds in the run's own event log: where the op
// the violation names returned, or where the model stopped the run; it
// has the trace's threads, the kernel contexts and the queue the defect
// is about. The screenshot shows the mark (a red vertical line across
// the plot). SPLICECHECK_UPDATE=1 copies the screenshots to docs/img.
func TestTimelineHTMLInChromium(t *testing.T) {
	chromium := testenv.RequireCommand(t, "chromium", "make html-deps installs it as root")
	atFault := func(tl *trace.Timeline, _ *trace.Trace) int {
		for _, ev := range tl.Events {
			if ev.Kind == trace.EventFault {
				return ev.Step
			}
		}
		return -1
	}
	atOpEnd := func(line int) func(*trace.Timeline, *trace.Trace) int {
		return func(tl *trace.Timeline, tr *trace.Trace) int {
			for _, ev := range tl.Events {
				if ev.Kind == trace.EventOpEnd && tr.Ops[ev.Op].Pos.Line == line {
					return ev.Step
				}
			}
			return -1
		}
	}
	dir := t.TempDir()
	for _, c := range []struct {
		name, file string
		at         func(*trace.Timeline, *trace.Trace) int
		lanes      []string // besides the trace's threads
		queue      string   // a chart the defect shows in
	}{
		{"lost-wakeup", "testdata/copied_seq_ahead_lost_wakeup.trace", atFault, []string{"softirq", "kworker", "timer", "runner"}, "d2 sk_receive_queue"},
		{"ring-tcp-reordering", "../../testdata/traces/counterexamples/tcp_overtakes_ring.trace", atOpEnd(17), []string{"softirq", "teardown"}, "b ring cursors ≤ 16383"},
		{"teardown-leak", "../../testdata/traces/counterexamples/close_leaks_pair.trace", atFault, []string{"softirq", "timer"}, "b psock refcnt"},
	} {
		t.Run(c.name, func(t *testing.T) {
			html := filepath.Join(dir, c.name+".html")
			code, out, errOut := runCLI(t, "run", "--html", html, c.file)
			src, err := os.ReadFile(c.file)
			if err != nil {
				t.Fatal(err)
			}
			h, _ := fuzz.ReadHeader(src)
			if code != exitDivergence || !strings.Contains(out, "verdict: "+h.Property+" fails") {
				t.Fatalf("run --html: exit %d\n%s%s", code, out, errOut)
			}
			tr, tl := replayLog(t, c.file, src, h)
			step := c.at(tl, tr)
			if step < 0 {
				t.Fatalf("the run's log has no step where %s broke", h.Property)
			}
			dom := chromiumRun(t, chromium, "--dump-dom", "file://"+html)
			label := fmt.Sprintf("violation of %s at step %d", h.Property, step)
			for _, want := range []string{
				`<g id="mark" role="img" aria-label="` + label + `">`,
				fmt.Sprintf("<h2>%s violated at step %d [%s]</h2>", h.Property, step, h.Signature),
				">" + c.queue + "</text>",
			} {
				if !strings.Contains(dom, want) {
					t.Errorf("Chromium's DOM lacks %q", want)
				}
			}
			for _, lane := range append(threadsOf(tr), c.lanes...) {
				if !strings.Contains(dom, `dy="14">`+lane+"</text>") {
					t.Errorf("Chromium's DOM has no lane %q", lane)
				}
			}
			shot := filepath.Join(dir, c.name+".png")
			chromiumRun(t, chromium, "--screenshot="+shot, fmt.Sprintf("--window-size=%d,%d", screenshotW, screenshotH), "file://"+html)
			if x := markColumn(t, shot); x < 0 {
				t.Errorf("the screenshot %s shows no mark", shot)
			}
			if os.Getenv("SPLICECHECK_UPDATE") != "" {
				copyFile(t, shot, filepath.Join("..", "..", "docs", "img", "timeline-"+c.name+".png"))
			}
		})
	}
}

// replayLog runs counterexample file (src) as `run` does and returns its
// trace and the run's event log.
func replayLog(t *testing.T, file string, src []byte, h fuzz.Header) (*trace.Trace, *trace.Timeline) {
	t.Helper()
	tr, err := trace.Parse(file, src)
	if err != nil {
		t.Fatal(err)
	}
	b, err := fuzz.NewCampaignModel(h.Mutations)
	if err != nil {
		t.Fatal(err)
	}
	r, v, err := fuzz.ReplayTimeline(context.Background(), b, tr, h.Property)
	if err != nil || v == nil || r.Timeline == nil {
		t.Fatalf("replay: err %v, violation %v", err, v)
	}
	return tr, r.Timeline
}

func threadsOf(tr *trace.Trace) []string {
	var out []string
	for i := range tr.Ops {
		if n := tr.Ops[i].ThreadName(); !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// chromiumRun runs headless Chromium with args, its profile, home,
// config and cache (crash reports, dconf) in a temporary directory, in
// a process group of its own that is killed when it ends (its helper
// processes with it) or after a minute; it returns what Chromium printed
// on stdout.
func chromiumRun(t *testing.T, chromium string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	home := t.TempDir()
	args = append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
		"--user-data-dir=" + filepath.Join(home, "profile")}, args...)
	cmd := exec.CommandContext(ctx, chromium, args...)
	cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"), "XDG_CACHE_HOME="+filepath.Join(home, ".cache"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if cmd.Process != nil {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // what is left of the group; ESRCH when nothing is
	}
	if err != nil {
		t.Fatalf("chromium %s: %v\n%s", strings.Join(args, " "), err, lastLines(stderr.String(), 5))
	}
	return stdout.String()
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// markColumn returns the x of a column of the screenshot, right of the
// label column, that is the mark's red (#d22) for 150 pixels or more, or
// -1. The verdict's red border is left of the label column; red text
// runs across, not down.
func markColumn(t *testing.T, file string) int {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	b := img.Bounds()
	if b.Dx() != screenshotW || b.Dy() != screenshotH {
		t.Fatalf("%s is %v, want %dx%d", file, b.Size(), screenshotW, screenshotH)
	}
	for x := b.Min.X + 280; x < b.Max.X; x++ {
		n := 0
		for y := b.Min.Y; y < b.Max.Y; y++ {
			if isMarkRed(img, x, y) {
				n++
			}
		}
		if n >= 150 {
			return x
		}
	}
	return -1
}

func isMarkRed(img image.Image, x, y int) bool {
	r, g, b, _ := img.At(x, y).RGBA()
	r, g, b = r>>8, g>>8, b>>8
	return r >= 200 && g <= 70 && b <= 70
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// The same trace and seed give the same page, byte for byte: a
// counterexample (its own schedule), and an ordinary trace under a
// seeded schedule.
func TestRunHTMLDeterministic(t *testing.T) {
	plain := writeTrace(t, "plain.trace", "conn a b\n@w send a 3000\n@r recv b 100\n@r recv b 5000\nclose a\n")
	for _, args := range [][]string{
		{"testdata/copied_seq_ahead_lost_wakeup.trace"},
		{"--seed", "7", plain},
	} {
		var pages []string
		for range 2 {
			html := filepath.Join(t.TempDir(), "t.html")
			code, _, errOut := runCLI(t, append([]string{"run", "--html", html}, args...)...)
			if code != exitOK && code != exitDivergence {
				t.Fatalf("%v: exit %d: %s", args, code, errOut)
			}
			b, err := os.ReadFile(html)
			if err != nil {
				t.Fatal(err)
			}
			pages = append(pages, string(b))
		}
		if pages[0] != pages[1] {
			t.Errorf("%v: two runs give two pages", args)
		}
		if !strings.Contains(pages[0], "<svg") || !strings.Contains(pages[0], `dy="14">main</text>`) {
			t.Errorf("%v: no timeline in the page", args)
		}
	}
}

// --html is refused with one line and exit 2 where it cannot be kept:
// a backend without a timeline, several traces, a file that cannot be
// written.
func TestRunHTMLBadInput(t *testing.T) {
	p := writeTrace(t, "ok.trace", "conn a b\n")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--backend", "kernel", p}, `--html: the timeline is the model's; backend "kernel" keeps none`},
		{[]string{"--backend", "vm", p}, `--html: the timeline is the model's; backend "vm" keeps none`},
		{[]string{p, p}, "--html: one trace at a time (got 2)"},
	} {
		code, out, errOut := runCLI(t, append([]string{"run", "--html", filepath.Join(t.TempDir(), "t.html")}, c.args...)...)
		if code != exitBadInput || out != "" || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2 and %q", c.args, code, out, errOut, c.want)
		}
	}
	code, _, errOut := runCLI(t, "run", "--html", filepath.Join(t.TempDir(), "no", "such", "dir.html"), p)
	if code != exitBadInput || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "--html: ") {
		t.Errorf("unwritable --html: exit %d, stderr %q", code, errOut)
	}
}

// checkCompanions verifies what check's JSON document (out) says of the
// files beside its counterexamples: each NEW cell's counterexample has
// its page beside it, marked with the cell's property, and its C
// reproducer, which opens with the counterexample's verdict and holds
// every op of the trace.
func checkCompanions(t *testing.T, out string) {
	t.Helper()
	var d jsonCheck
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	n := 0
	for _, c := range d.Cells {
		if c.File == "" {
			continue
		}
		n++
		if c.Timeline != strings.TrimSuffix(c.File, ".trace")+".html" {
			t.Errorf("%s %s: timeline %q beside %q", c.Profile, c.Property, c.Timeline, c.File)
			continue
		}
		page, err := os.ReadFile(c.Timeline)
		if err != nil {
			t.Error(err)
			continue
		}
		if !strings.Contains(string(page), `aria-label="violation of `+c.Property+` at step `) {
			t.Errorf("%s does not mark %s", c.Timeline, c.Property)
		}
		if c.Repro != strings.TrimSuffix(c.File, ".trace")+".c" {
			t.Errorf("%s %s: reproducer %q beside %q", c.Profile, c.Property, c.Repro, c.File)
			continue
		}
		src, err := os.ReadFile(c.Repro)
		tr, terr := trace.ParseFile(c.File)
		if err != nil || terr != nil {
			t.Error(err, terr)
			continue
		}
		if !strings.Contains(string(src), "property: "+c.Property) {
			t.Errorf("%s does not name %s", c.Repro, c.Property)
		}
		for i := range tr.Ops {
			if op := tr.Ops[i].String(); !strings.Contains(string(src), "\""+op+"\"") {
				t.Errorf("%s lacks op %q", c.Repro, op)
			}
		}
	}
	if n == 0 {
		t.Errorf("no counterexample written:\n%s", out)
	}
}

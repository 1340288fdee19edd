package kbuild

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"time"
)

// run runs argv in dir with its output (stdout and stderr, in order)
// appended to log and handed line by line to onLine (which may be nil).
// The command runs in a process group of its own, killed as a whole when
// ctx ends and again after the command exits, so nothing it started
// outlives run. A ctx that ended is the error returned (wrapped).
func (b *builder) run(ctx context.Context, log io.Writer, dir string, onLine func(string), argv ...string) error {
	fmt.Fprintf(log, "$ cd %s && %s\n", dir, strings.Join(argv, " "))
	if err := ctx.Err(); err != nil {
		return err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "LC_ALL=C", "LANG=C", "LANGUAGE=")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	cmd.Stdout, cmd.Stderr = w, w
	err = cmd.Start()
	w.Close()
	if err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return fmt.Errorf("%w: %s not found: %w", ErrMissingDeps, argv[0], err)
		}
		return fmt.Errorf("start %s: %w", argv[0], err)
	}
	pgid := cmd.Process.Pid
	exited := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			syscall.Kill(-pgid, syscall.SIGKILL)
		case <-exited:
		}
	}()
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		br := bufio.NewReader(r)
		for {
			line, err := br.ReadString('\n')
			if line != "" {
				io.WriteString(log, line)
				if !strings.HasSuffix(line, "\n") {
					io.WriteString(log, "\n")
				}
				line = strings.TrimRight(line, "\r\n")
				if b.cfg.Verbose {
					fmt.Fprintln(b.progress, line)
				}
				if onLine != nil {
					onLine(line)
				}
			}
			if err != nil {
				return
			}
		}
	}()
	werr := cmd.Wait()
	close(exited)
	syscall.Kill(-pgid, syscall.SIGKILL) // anything the command left running
	<-scanned
	if err := ctx.Err(); err != nil {
		fmt.Fprintf(log, "# %s killed: %v\n", argv[0], err)
		return err
	}
	if werr != nil {
		fmt.Fprintf(log, "# %s: %v\n", argv[0], werr)
	}
	return werr
}

// compilerError matches a compiler's or assembler's error line:
// FILE:LINE[:COL]: [fatal ]error: message.
var compilerError = regexp.MustCompile(`^\S+?:\d+(:\d+)?: (fatal )?error: `)

// makeWatch follows a make run's output: progress lines every so many
// build steps, and the lines an error report quotes.
type makeWatch struct {
	b        *builder
	start    time.Time
	steps    int
	compiler string // the first compiler error line
	other    string // the first other line that says error
	last     string // the last non-empty line
}

// progressEvery is how many kbuild steps (CC, LD, AR, ... lines) pass
// between two progress lines.
const progressEvery = 250

func (m *makeWatch) line(s string) {
	t := strings.TrimSpace(s)
	if t == "" {
		return
	}
	m.last = t
	if f := strings.Fields(s); strings.HasPrefix(s, "  ") && len(f) >= 2 && f[0] == strings.ToUpper(f[0]) {
		m.steps++
		if m.steps%progressEvery == 0 {
			m.b.logf("make: %d steps (%s %s), %s", m.steps, f[0], f[len(f)-1], time.Since(m.start).Round(time.Second))
		}
	}
	switch {
	case m.compiler == "" && compilerError.MatchString(t):
		m.compiler = t
	case m.other == "" && (strings.Contains(t, "error:") || strings.Contains(t, "undefined reference") || strings.Contains(t, "***")):
		m.other = t
	}
}

// failure is the one-line error for a failed make, naming the log.
func (m *makeWatch) failure(step string, err error, logPath string) error {
	switch {
	case m.compiler != "":
		return fmt.Errorf("%w: %s: %s (log: %s)", ErrCompile, step, m.compiler, logPath)
	case m.other != "":
		return fmt.Errorf("%w: %s: %s (log: %s)", ErrBuild, step, m.other, logPath)
	case m.last != "":
		return fmt.Errorf("%w: %s: %v; last line: %s (log: %s)", ErrBuild, step, err, m.last, logPath)
	}
	return fmt.Errorf("%w: %s: %v (log: %s)", ErrBuild, step, err, logPath)
}

// patchWatch follows GNU patch's output for the first thing that failed:
// a hunk, a file that is not there, a patch already applied.
type patchWatch struct {
	file   string // the file being patched
	header string // the last "--- " or "+++ " line quoted for a missing file
	first  string
	last   string
}

var hunkFailed = regexp.MustCompile(`^Hunk #\d+ FAILED at \d+`)

func (p *patchWatch) line(s string) {
	t := strings.TrimSpace(s)
	if t == "" {
		return
	}
	p.last = t
	switch {
	case strings.HasPrefix(t, "patching file "), strings.HasPrefix(t, "checking file "):
		p.file = strings.Trim(strings.SplitN(t, " file ", 2)[1], "'")
	case strings.HasPrefix(t, "can't find file to patch"):
		p.header = ""
	case strings.HasPrefix(t, "|+++ "), strings.HasPrefix(t, "|--- ") && p.header == "":
		p.header = strings.Fields(strings.TrimPrefix(t, "|"))[1]
	}
	if p.first != "" {
		return
	}
	switch {
	case hunkFailed.MatchString(t):
		p.first = p.file + ": " + strings.TrimSuffix(t, ".")
	case strings.HasPrefix(t, "No file to patch"):
		p.first = stripPrefix(p.header, 1) + ": no such file to patch"
	case strings.HasPrefix(t, "Reversed (or previously applied) patch detected"):
		p.first = p.file + ": reversed or already applied"
	case strings.HasPrefix(t, "patch: ****"):
		p.first = strings.TrimSpace(strings.TrimPrefix(t, "patch: ****"))
	}
}

// stripPrefix drops the first n components of a patch path (as -p1).
func stripPrefix(p string, n int) string {
	for i := 0; i < n; i++ {
		_, rest, ok := strings.Cut(p, "/")
		if !ok {
			break
		}
		p = rest
	}
	return p
}

func (p *patchWatch) failure(name string, err error, logPath string) error {
	what := p.first
	if what == "" {
		what = fmt.Sprintf("%v; %s", err, p.last)
	}
	return fmt.Errorf("%w: %s: %s (log: %s)", ErrPatch, name, what, logPath)
}

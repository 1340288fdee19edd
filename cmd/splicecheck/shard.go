package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/splicecheck/splicecheck/fuzz"
)

// parseShard reads --shard K/N.
func parseShard(s string) (k, n int, err error) {
	a, b, ok := strings.Cut(s, "/")
	k, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || n < 1 || k < 0 || k >= n {
		return 0, 0, usagef("--shard: want K/N with 0 <= K < N, got %q", s)
	}
	return k, n, nil
}

// workerEnv is set in the environment of check's --jobs workers. The
// CLI ignores it; a test binary, which os.Executable names under go
// test, runs the command line it is given instead of its tests
// (TestMain).
const workerEnv = "SPLICECHECK_WORKER"

// progressPrefix marks a worker's progress lines on its stderr
// (check --worker): "PREFIX PROFILE TRACES".
const progressPrefix = "\x00progress "

// workerProgress is a worker's Progress callback: one line per trace on
// stderr, for the parent's progress line.
func workerProgress(e *env) func(string, int, time.Duration) {
	return func(profile string, n int, _ time.Duration) {
		fmt.Fprintf(e.stderr, "%s%s %d\n", progressPrefix, profile, n)
	}
}

// workerArgs are check's flags as the user set them, less those a worker
// gets its own way (--jobs, --shard, --format, --json, --out, --worker),
// as --name=value.
func workerArgs(fs *flag.FlagSet) []string {
	var args []string
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "jobs", "shard", "format", "json", "out", "worker":
			return
		}
		args = append(args, "--"+f.Name+"="+f.Value.String())
	})
	return args
}

// runJobs runs check as jobs worker processes, shards 0..jobs-1 of the
// campaign, and merges their results into one campaign's (fuzz.Merge):
// the same table as one process over the same traces. An interrupt of
// the parent is passed on to the workers, each reports what it ran, and
// the merge covers the traces every worker reached.
//
// Workers write the counterexamples they find to outDir at once, as one
// process does; where two find one of the same profile and property, the
// merge leaves the file of the first trace.
func runJobs(ctx context.Context, e *env, args []string, jobs int, outDir string, progress func(string, int, time.Duration)) ([]fuzz.Shard, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("--jobs: %w", err)
	}
	type worker struct {
		cmd    *exec.Cmd
		stdout bytes.Buffer
		stderr bytes.Buffer // its lines that are not progress
		done   map[string]int
	}
	var mu sync.Mutex // guards the workers' done counts
	start := time.Now()
	ws := make([]*worker, jobs)
	for k := range ws {
		ws[k] = &worker{done: map[string]int{}} // all made before any reader runs
	}
	var wg sync.WaitGroup
	for k, w := range ws {
		w.cmd = exec.Command(exe, append([]string{"check"}, append(args,
			"--shard", fmt.Sprintf("%d/%d", k, jobs), "--jobs", "1", "--format", "json", "--out", outDir, "--worker")...)...)
		w.cmd.Stdout = &w.stdout
		// A process group of its own: a terminal's Ctrl-C reaches the
		// parent only, which passes it on once (a worker's second
		// signal would kill it before it reports); and a worker dies
		// with the parent, whatever kills that (Pdeathsig; a worker
		// writing progress would also die of SIGPIPE, one shrinking
		// would not).
		w.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		w.cmd.Env = append(os.Environ(), workerEnv+"=1")
		if os.Getenv("GOMAXPROCS") == "" {
			// A model run is one coroutine at a time: a worker with
			// every P would spend the others on scheduling and GC
			// (measured: 1.26 cores for 1.0 core's work).
			w.cmd.Env = append(w.cmd.Env, "GOMAXPROCS="+strconv.Itoa(max(1, runtime.NumCPU()/jobs)))
		}
		pipe, err := w.cmd.StderrPipe()
		if err != nil {
			return nil, fmt.Errorf("--jobs: %w", err)
		}
		if err := w.cmd.Start(); err != nil {
			for _, o := range ws[:k] {
				o.cmd.Process.Kill()
				o.cmd.Wait()
			}
			return nil, fmt.Errorf("--jobs: start worker: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sc := bufio.NewScanner(pipe)
			for sc.Scan() {
				line := sc.Text()
				rest, ok := strings.CutPrefix(line, progressPrefix)
				if !ok {
					w.stderr.WriteString(line + "\n")
					continue
				}
				profile, n, _ := strings.Cut(rest, " ")
				v, _ := strconv.Atoi(n)
				mu.Lock()
				w.done[profile] = v
				total := 0
				for _, o := range ws {
					total += o.done[profile]
				}
				mu.Unlock()
				if progress != nil {
					progress(profile, total, time.Since(start))
				}
			}
			io.Copy(io.Discard, pipe)
		}()
	}
	stop := context.AfterFunc(ctx, func() {
		for _, w := range ws {
			w.cmd.Process.Signal(syscall.SIGINT)
		}
	})
	defer stop()
	wg.Wait()
	var shards []fuzz.Shard
	var errs []error
	for k, w := range ws {
		werr := w.cmd.Wait()
		s, err := workerShard(w.stdout.Bytes())
		if err != nil {
			if werr == nil {
				werr = err
			}
			msg := strings.TrimPrefix(strings.TrimSpace(w.stderr.String()), "splicecheck check: ")
			errs = append(errs, fmt.Errorf("worker %d/%d (%w): %s", k, jobs, werr, msg))
			continue
		}
		shards = append(shards, s)
	}
	if len(errs) > 0 && ctx.Err() == nil {
		return nil, errors.Join(errs...)
	}
	if len(shards) < jobs {
		return nil, errors.Join(errs...) // interrupted before every worker could report
	}
	return shards, nil
}

// shardDoc is what check --shard --format json prints, or the error
// object with it as "partial" (an interrupted shard).
type shardDoc struct {
	Shard   *fuzz.Shard `json:"shard"`
	Error   string      `json:"error"`
	Partial *shardDoc   `json:"partial"`
}

// workerShard reads a shard's result from its JSON output.
func workerShard(b []byte) (fuzz.Shard, error) {
	var d shardDoc
	if err := json.Unmarshal(b, &d); err != nil {
		return fuzz.Shard{}, fmt.Errorf("not a check --shard --format json result: %w", err)
	}
	switch {
	case d.Shard != nil:
		return *d.Shard, nil
	case d.Partial != nil && d.Partial.Shard != nil:
		return *d.Partial.Shard, nil
	case d.Error != "":
		return fuzz.Shard{}, errors.New(d.Error)
	}
	return fuzz.Shard{}, errors.New("not a check --shard --format json result (no \"shard\")")
}

func cmdMerge(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "merge", "[flags] RESULT...",
		"Combine the results of a campaign run as shards (check --shard K/N --format json,\n"+
			"one file per shard) into the table one check over the same traces prints, and\n"+
			"exit as it would: status 1 when a property fails on a profile expected to pass it.")
	var ff formatFlags
	ff.register(fs, formatText, formatJSON, formatKTAP)
	outDir := fs.String("out", "out/check", "directory for the counterexample traces")
	coverage := fs.Bool("coverage", false, "also list, per profile, the mirrored kernel functions the campaign did not reach")
	paths, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if err := ff.resolve(); err != nil {
		return err
	}
	if len(paths) == 0 {
		return usagef("no result given (the files of check --shard K/N --format json)")
	}
	var shards []fuzz.Shard
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		s, err := workerShard(b)
		if err != nil {
			return fmt.Errorf("%s: %w: %w", p, fuzz.ErrShards, err)
		}
		shards = append(shards, s)
	}
	outs, err := fuzz.Merge(shards, *outDir)
	if err != nil {
		return err
	}
	return printMerged(ctx, e, ff.format, attacked(outs), outs, shards[0], *coverage)
}

// printMerged prints merged shards (s is one of them) as check prints
// one campaign of profiles, or what was merged of an interrupted one.
func printMerged(ctx context.Context, e *env, format string, profiles []string, outs []fuzz.Verdict, s fuzz.Shard, coverage bool) error {
	backend := s.Backend
	if backend == "" {
		backend = "model"
	}
	cr := &checkReport{e: e, format: format, profiles: profiles, outs: outs,
		withRef: len(s.Mutations) > 0 || s.Diff != "", replay: replayer{backend: backend, diff: s.Diff}}
	cr.writeCompanions(ctx)
	if ctx.Err() != nil {
		return cr.interrupt(ctx)
	}
	return cr.finish(coverage)
}

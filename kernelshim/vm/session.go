package vm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/splicecheck/splicecheck/trace"
)

// Session is the `vm` backend: a trace.Backend whose traces run, one at a
// time, in a long-lived guest booted from Config.Kernel. The guest is
// booted once, on Start or on the first trace, and then serves requests:
// the host writes each trace (trace.Format'ted, with its resolved
// options) as a run frame to the guest's ttyS1, and the guest answers
// with a trace frame of observations (frame.go). A guest that dies
// (panics, powers off, damages a frame) or holds a trace past its limit
// (Config.TraceTimeout) is killed; the trace gets an error wrapping
// ErrPanic, ErrHung or ErrGuest with the last console lines, and the next
// trace boots a fresh guest. A boot that fails (ErrBadImage, ErrNoSockmap,
// ErrModule, ...) makes the session fail every later call with the same
// error.
//
// A caller whose context ends while its trace runs gets the context's
// error at once; the guest finishes that trace (within its limit) and
// the next call discards its result before sending its own. Only the
// qemu runner is supported.
type Session struct {
	cfg       Config
	sem       chan struct{} // held by the one call talking to the guest; a channel so waiting honours ctx
	done      chan struct{} // closed by Close
	closeOnce sync.Once

	// Guarded by sem:
	tmp    *tempDir // the session's temp dir: initramfs, console logs
	initrd string   // built at the first boot, reused by every reboot
	g      *machine // the guest, nil before the first boot and after a death
	broken error    // a failed boot: every later call returns it
	nextID int
	st     SessionStats
	pids   []int // every QEMU started (tests check that none outlives Close)
}

// SessionStats is what a session did.
type SessionStats struct {
	Release    string        // the guest's uname -r
	Accel      string        // "kvm" or "tcg"
	Modules    []string      // loaded in the guest (/proc/modules), oldest first
	Boots      int           // QEMU starts
	FirstReady time.Duration // from the first QEMU start to the guest's ready frame
	LastReady  time.Duration // the same for the latest boot
	Traces     int           // traces that came back with observations
	TraceTime  time.Duration // the round trips of those traces, summed
	Abandoned  int           // traces whose caller gave up (its context ended) before the result
	// LostDeath is the last guest death (or hang) on an abandoned trace,
	// which no caller was waiting to hear about.
	LostDeath string
}

var _ trace.Backend = (*Session)(nil)

// NewSession checks what a boot needs (the image, the guest binary, the
// modules, QEMU) and returns a session that has not booted yet. Errors
// name the flag and the file.
func NewSession(cfg Config) (*Session, error) {
	cfg = cfg.withDefaults()
	if cfg.Runner != RunnerQEMU {
		return nil, fmt.Errorf("--runner %s: %w: the vm backend boots with qemu", cfg.Runner, ErrBadRunner)
	}
	if err := checkMachine(cfg); err != nil {
		return nil, err
	}
	if _, err := exec.LookPath(cfg.QEMU); err != nil {
		return nil, fmt.Errorf("%w: %s not found (apt-get install qemu-system-x86): %w", ErrNoRunner, cfg.QEMU, err)
	}
	return &Session{cfg: cfg, sem: make(chan struct{}, 1), done: make(chan struct{})}, nil
}

// Name returns "vm".
func (s *Session) Name() string { return "vm" }

// Start boots the guest unless it is up, and waits until it takes
// requests; it returns the boot's error (a bad image, a kernel without
// sockmap, a module the kernel refuses, ...). Calling it is optional: the
// first trace boots the guest otherwise.
func (s *Session) Start(ctx context.Context) error {
	if err := s.acquire(ctx); err != nil {
		return err
	}
	defer s.release()
	_, err := s.machine(ctx)
	return err
}

// Run runs t in the guest with opts (already resolved by trace.Run)
// and returns its observations, with t's line numbers. The guest's
// kernel backend keeps no account of a run (trace.ErrNoStats) and no
// timeline (trace.ErrNoTimeline).
func (s *Session) Run(ctx context.Context, t *trace.Trace, opts trace.Options) (trace.RunResult, error) {
	if opts.Stats {
		return trace.RunResult{}, fmt.Errorf("vm: %w", trace.ErrNoStats)
	}
	if opts.Timeline {
		return trace.RunResult{}, fmt.Errorf("vm: %w", trace.ErrNoTimeline)
	}
	obs, err := s.run(ctx, t, opts, "")
	return trace.RunResult{Obs: obs}, err
}

// Stats returns what the session has done so far.
func (s *Session) Stats() SessionStats {
	s.sem <- struct{}{}
	defer s.release()
	st := s.st
	st.Modules = append([]string(nil), s.st.Modules...)
	return st
}

// Close kills the guest and removes the session's temp dir. A call in
// flight returns ErrClosed. Close may be called more than once.
func (s *Session) Close() error {
	s.closeOnce.Do(func() { close(s.done) })
	s.sem <- struct{}{}
	defer s.release()
	if s.g != nil {
		s.drop(s.g)
	}
	err := s.tmp.release()
	s.tmp, s.initrd = nil, ""
	return err
}

func (s *Session) acquire(ctx context.Context) error {
	select {
	case <-s.done:
		return ErrClosed
	default:
	}
	select {
	case s.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("vm: %w", ctx.Err())
	case <-s.done:
		return ErrClosed
	}
}

func (s *Session) release() { <-s.sem }

// run is Run with a fault planted in the guest (tests).
func (s *Session) run(ctx context.Context, t *trace.Trace, opts trace.Options, fault string) ([]trace.Observation, error) {
	if err := s.acquire(ctx); err != nil {
		return nil, err
	}
	defer s.release()
	m, err := s.machine(ctx)
	if err != nil {
		return nil, err
	}
	s.nextID++
	limit := s.cfg.TraceTimeout
	if limit <= 0 {
		limit = time.Minute + time.Duration(len(t.Ops))*2*opts.Scale(opts.OpTimeout)
	}
	start := time.Now()
	m.send(runPayload{
		ID: s.nextID, File: traceName(t), Source: t.Format(),
		Profile: opts.Profile, OpTimeout: opts.OpTimeout, Seed: opts.Seed, TimeScale: opts.TimeScale, Fault: fault,
	}, start.Add(limit), limit)
	tp, err := s.await(ctx, m)
	if err != nil {
		return nil, err
	}
	if tp.Error != "" {
		return nil, fmt.Errorf("%w: %s", ErrGuest, tp.Error)
	}
	obs := tp.run().Obs
	if len(obs) != len(t.Ops) {
		return nil, fmt.Errorf("%w: %d observations for %d ops", ErrTransport, len(obs), len(t.Ops))
	}
	for i := range obs {
		// The guest ran the canonical form, whose lines are not t's.
		obs[i].Line = t.Ops[i].Pos.Line
	}
	s.st.Traces++
	s.st.TraceTime += time.Since(start)
	return obs, nil
}

func traceName(t *trace.Trace) string {
	if t.File != "" {
		return t.File
	}
	return "(generated trace)"
}

// machine returns the guest, ready and idle: booted if there is none,
// waited for if it is booting, and rid of the result of an abandoned
// trace. A guest found dead is replaced.
func (s *Session) machine(ctx context.Context) (*machine, error) {
	for {
		if s.broken != nil {
			return nil, s.broken
		}
		select {
		case <-s.done:
			return nil, ErrClosed
		default:
		}
		if s.g == nil {
			m, err := s.boot()
			if err != nil {
				s.broken = err
				return nil, err
			}
			s.g = m
		}
		m := s.g
		if err := s.awaitReady(ctx, m); err != nil {
			return nil, err
		}
		if m.pending != 0 {
			if _, err := s.await(ctx, m); err != nil {
				if s.g == m {
					return nil, err // ctx or Close
				}
				s.st.LostDeath = err.Error()
			}
			continue
		}
		select {
		case <-m.dead:
			s.drop(m) // died between traces
			continue
		default:
		}
		return m, nil
	}
}

// boot starts QEMU on the session's initramfs.
func (s *Session) boot() (*machine, error) {
	if s.tmp == nil {
		tmp, err := makeTempDir("")
		if err != nil {
			return nil, err
		}
		s.tmp = tmp
	}
	if s.initrd == "" {
		initrd := filepath.Join(s.tmp.path, "initramfs.gz")
		if err := buildInitramfs(initrd, s.cfg.GuestBinary, nil, nil, s.cfg.Modules); err != nil {
			return nil, err
		}
		s.initrd = initrd
	}
	s.st.Boots++
	console := filepath.Join(s.tmp.path, fmt.Sprintf("console-%d.log", s.st.Boots))
	os.Remove(filepath.Join(s.tmp.path, fmt.Sprintf("console-%d.log", s.st.Boots-1)))
	accel := detectAccel()
	cmd := exec.Command(s.cfg.QEMU, qemuArgs(s.cfg, accel, s.initrd, console, true)...)
	m := &machine{
		cfg: s.cfg, cmd: cmd, accel: accel, consoleLog: console,
		ready: make(chan struct{}), dead: make(chan struct{}), quit: make(chan struct{}),
		results: make(chan tracePayload, 4), writeErr: make(chan error, 1),
		noise: &consoleTail{max: 8},
	}
	cmd.Stderr = &m.stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("vm: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		stdin.Close()
		return nil, fmt.Errorf("vm: %w", err)
	}
	m.start = time.Now()
	m.bootDeadline = m.start.Add(bootLimit(s.cfg))
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%w: start %s: %w", ErrNoRunner, cmd.Path, err)
	}
	s.pids = append(s.pids, cmd.Process.Pid)
	m.stdin = stdin
	m.fw = &frameWriter{w: stdin}
	go m.readLoop(stdout)
	return m, nil
}

// bootLimit is how long a session's guest may take to be ready: Idle
// and a minute more, and at least five minutes, for a TCG guest on a
// loaded 2-core machine took over two minutes to boot (make test with
// other jobs beside it) and a boot that fails says so long before.
func bootLimit(cfg Config) time.Duration {
	return max(cfg.Idle+time.Minute, 5*time.Minute)
}

// awaitReady waits until m takes requests. A boot that fails or does not
// end in time breaks the session.
func (s *Session) awaitReady(ctx context.Context, m *machine) error {
	select {
	case <-m.ready:
	default:
		timer := time.NewTimer(time.Until(m.bootDeadline))
		defer timer.Stop()
		select {
		case <-m.ready:
		case <-timer.C:
			tail := m.tail()
			s.drop(m)
			s.broken = fmt.Errorf("%w: not ready %v after QEMU started; console: %s", ErrHung, bootLimit(s.cfg), tail)
			return s.broken
		case <-ctx.Done():
			return fmt.Errorf("vm: %w", ctx.Err())
		case <-s.done:
			return ErrClosed
		}
	}
	if m.readyErr != nil {
		s.drop(m)
		s.broken = m.readyErr
		return s.broken
	}
	if !m.counted {
		m.counted = true
		s.st.Release, s.st.Accel, s.st.Modules = m.hello.Release, m.accel, m.hello.Modules
		s.st.LastReady = m.readyAt.Sub(m.start)
		if s.st.FirstReady == 0 {
			s.st.FirstReady = s.st.LastReady
		}
	}
	return nil
}

// await waits for the result of m's pending request. The guest dying or
// overrunning the request's limit drops m (s.g becomes nil) and returns
// its error; ctx ending or Close returns at once and leaves the request
// pending.
func (s *Session) await(ctx context.Context, m *machine) (tracePayload, error) {
	timer := time.NewTimer(time.Until(m.deadline))
	defer timer.Stop()
	for {
		select {
		case tp := <-m.results:
			if tp.Index != m.pending {
				continue // an abandoned request's, already given up
			}
			m.pending = 0
			return tp, nil
		case err := <-m.writeErr:
			if err == nil {
				continue
			}
			<-m.dead // the pipe broke because QEMU is gone
			err = fmt.Errorf("%w (sending the trace: %v)", m.deadErr, err)
			s.drop(m)
			return tracePayload{}, err
		case <-m.dead:
			err := m.deadErr
			s.drop(m)
			return tracePayload{}, err
		case <-timer.C:
			err := fmt.Errorf("%w: no result for %s after %v; console: %s", ErrHung, m.pendingName, m.limit, m.tail())
			s.drop(m)
			return tracePayload{}, err
		case <-ctx.Done():
			s.st.Abandoned++
			return tracePayload{}, fmt.Errorf("vm: %w", ctx.Err())
		case <-s.done:
			return tracePayload{}, ErrClosed
		}
	}
}

// drop kills m's QEMU, waits until it is reaped and forgets m.
func (s *Session) drop(m *machine) {
	m.kill()
	m.quitOnce.Do(func() { close(m.quit) })
	<-m.dead
	if s.g == m {
		s.g = nil
	}
}

// machine is one boot of a session's guest: a QEMU process group whose
// stdin and stdout are the guest's ttyS1.
type machine struct {
	cfg          Config
	cmd          *exec.Cmd
	accel        string
	consoleLog   string
	stdin        io.WriteCloser
	wmu          sync.Mutex
	fw           *frameWriter // LOCKING: wmu
	stderr       bytes.Buffer // QEMU's; read only after it is reaped
	start        time.Time
	bootDeadline time.Time

	ready    chan struct{} // closed on the ready frame, or when the boot failed (readyErr)
	readyErr error         // written before ready is closed
	readyAt  time.Time
	hello    helloPayload // written before ready is closed
	counted  bool         // its boot is in the session's stats; guarded by the session

	dead    chan struct{} // closed once QEMU is reaped
	deadErr error         // why, written before dead is closed

	results  chan tracePayload
	writeErr chan error
	quit     chan struct{} // closed by drop: the reader stops delivering
	quitOnce sync.Once

	// The request in flight; guarded by the session.
	pending     int
	pendingName string
	deadline    time.Time
	limit       time.Duration

	mu    sync.Mutex
	noise *consoleTail // LOCKING: mu; stdout lines that are not frames
}

// send writes a request to the guest. The write runs in its own goroutine
// (a guest that stops reading must not block the session); its error
// comes back on writeErr.
func (m *machine) send(rp runPayload, deadline time.Time, limit time.Duration) {
	m.pending, m.pendingName, m.deadline, m.limit = rp.ID, rp.File, deadline, limit
	go func() {
		m.wmu.Lock()
		err := m.fw.write(kindRun, rp)
		m.wmu.Unlock()
		select {
		case m.writeErr <- err:
		case <-m.quit:
		}
	}()
}

func (m *machine) kill() {
	if m.cmd.Process != nil {
		syscall.Kill(-m.cmd.Process.Pid, syscall.SIGKILL)
	}
}

// tail is the last console lines, for error reports.
func (m *machine) tail() string {
	t := &consoleTail{max: 6}
	for _, l := range readLines(m.consoleLog) {
		t.add(l)
	}
	m.mu.Lock()
	for _, l := range m.noise.lines {
		t.add(l)
	}
	m.mu.Unlock()
	return t.String()
}

func (m *machine) markReady(err error) {
	select {
	case <-m.ready:
	default:
		m.readyErr, m.readyAt = err, time.Now()
		close(m.ready)
	}
}

// readLoop reads the guest's frames until QEMU's stdout ends, then reaps
// QEMU and says why it ended.
func (m *machine) readLoop(stdout io.Reader) {
	fr := newFrameReader(stdout)
	fr.Noise = func(l string) {
		m.mu.Lock()
		m.noise.add(l)
		m.mu.Unlock()
	}
	var failure error
	gotHello := false
	for {
		f, err := fr.read()
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, os.ErrClosed) && failure == nil {
				failure = err // a damaged frame
				m.kill()
				io.Copy(io.Discard, stdout)
			}
			break
		}
		switch f.kind {
		case kindHello:
			json.Unmarshal(f.payload, &m.hello)
			gotHello = true
		case kindReady:
			m.markReady(nil)
		case kindFatal:
			var fp fatalPayload
			json.Unmarshal(f.payload, &fp)
			if failure == nil {
				failure = fatalError(m.cfg, m.hello.Release, fp)
			}
			m.markReady(failure)
		case kindTrace:
			var tp tracePayload
			if err := json.Unmarshal(f.payload, &tp); err != nil {
				if failure == nil {
					failure = fmt.Errorf("%w: trace frame: %w", ErrTransport, err)
				}
				m.kill()
				continue
			}
			select {
			case m.results <- tp:
			case <-m.quit:
			}
		}
	}
	m.stdin.Close()
	werr := m.cmd.Wait()
	if failure == nil {
		console := readLines(m.consoleLog)
		failure = classifyExit(werr, gotHello, m.stderr.String(), console, m.tail())
	}
	m.deadErr = failure
	m.markReady(failure)
	close(m.dead)
}

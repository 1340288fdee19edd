package testenv

import (
	"errors"
	"testing"
)

// fakeTB records what RequireKernel does to a test.
type fakeTB struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Skip(args ...any) {
	f.skipped = true
	f.msg = args[0].(string)
}
func (f *fakeTB) Fatalf(format string, args ...any) { f.failed = true }

func TestRequireKernel(t *testing.T) {
	noPriv := errors.New("kernel backend: need root: running as uid 1000")
	for _, tc := range []struct {
		env           string
		probe         error
		skip, failure bool
	}{
		{"", nil, false, false},
		{"1", nil, false, false},
		{"", noPriv, true, false},
		{"0", noPriv, true, false},
		{"1", noPriv, false, true},
	} {
		t.Setenv(RequireKernelEnv, tc.env)
		f := &fakeTB{}
		RequireKernel(f, func() error { return tc.probe })
		if f.skipped != tc.skip || f.failed != tc.failure {
			t.Errorf("env %q probe %v: skipped=%v failed=%v, want %v %v", tc.env, tc.probe, f.skipped, f.failed, tc.skip, tc.failure)
		}
		if f.skipped && f.msg != noPriv.Error() {
			t.Errorf("skip message %q, want the probe's one line", f.msg)
		}
	}
}

func TestRequireCommand(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	for _, env := range []string{"", "1"} {
		t.Setenv(RequireKernelEnv, env)
		f := &fakeTB{}
		if p := RequireCommand(f, "no-such-program", "make deps installs it"); p != "" {
			t.Fatalf("found %q in an empty PATH", p)
		}
		if f.skipped == (env == "1") || f.failed != (env == "1") {
			t.Errorf("env %q: skipped=%v failed=%v", env, f.skipped, f.failed)
		}
		if f.skipped && f.msg != "no-such-program is not installed (make deps installs it)" {
			t.Errorf("skip message %q", f.msg)
		}
	}
}

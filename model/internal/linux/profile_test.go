package linux

import (
	"errors"
	"testing"

	"github.com/splicecheck/splicecheck/trace"
)

func TestParseProfile(t *testing.T) {
	for _, c := range []struct {
		name, want string
		err        error
	}{
		{"linux-6.18", "linux-6.18", nil},
		{"linux-6.12", "linux-6.12", nil},
		{"linux-6.12+loopback-splice-seq", "linux-6.12+loopback-splice-seq", nil},
		{"linux-6.1", "linux-6.1", nil},
		{"nonsense", "", trace.ErrUnknownProfile},
	} {
		p, err := ParseProfile(c.name)
		if !errors.Is(err, c.err) || err == nil && p.Name != c.want {
			t.Errorf("ParseProfile(%q) = %q, %v; want %q, %v", c.name, p.Name, err, c.want, c.err)
		}
	}
	// A patch the model lacks is refused as unsupported.
	saved := patches
	patches = map[string]func(*behaviour){}
	defer func() { patches = saved }()
	if _, err := ParseProfile("splice-copy"); !errors.Is(err, errProfile) || !errors.Is(err, trace.ErrUnsupported) {
		t.Errorf("ParseProfile(splice-copy) without the patch: %v", err)
	}
}

func TestUnknownMutation(t *testing.T) {
	if _, err := NewWithConfig(Config{Mutations: []string{"no-such-bug"}}); !errors.Is(err, errMutation) {
		t.Fatalf("NewWithConfig(no-such-bug): %v, want errMutation", err)
	}
}

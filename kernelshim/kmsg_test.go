package kernelshim

import (
	"os"
	"strings"
	"testing"

	"github.com/splicecheck/splicecheck/internal/testenv"
)

// TestKmsgSeesWarnings writes a warning-looking record to the kernel log
// (root may write /dev/kmsg) and checks that Kmsg reports it, and only
// records logged after it was opened.
func TestKmsgSeesWarnings(t *testing.T) {
	testenv.RequireKernel(t, Available)
	k, err := OpenKmsg()
	if err != nil {
		testenv.Unavailable(t, "kernel log: "+err.Error())
	}
	defer k.Close()
	if w, err := k.Warnings(); err != nil || len(w) != 0 {
		t.Fatalf("fresh log: %q, %v; want nothing", w, err)
	}
	f, err := os.OpenFile("/dev/kmsg", os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, s := range []string{"splicecheck kmsg test: an ordinary line\n", "WARNING: splicecheck kmsg test\n"} {
		if _, err := f.WriteString(s); err != nil {
			t.Fatal(err)
		}
	}
	w, err := k.Warnings()
	if err != nil {
		t.Fatal(err)
	}
	if len(w) != 1 || !strings.Contains(w[0], "WARNING: splicecheck kmsg test") {
		t.Fatalf("warnings %q, want the one planted", w)
	}
}

// Messages returns every record logged after the last read, warnings or
// not, in order.
func TestKmsgMessages(t *testing.T) {
	testenv.RequireKernel(t, Available)
	k, err := OpenKmsg()
	if err != nil {
		testenv.Unavailable(t, "kernel log: "+err.Error())
	}
	defer k.Close()
	f, err := os.OpenFile("/dev/kmsg", os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, s := range []string{"splicecheck kmsg test: first\n", "splicecheck kmsg test: second\n"} {
		if _, err := f.WriteString(s); err != nil {
			t.Fatal(err)
		}
	}
	var mine []string
	m, err := k.Messages()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range m {
		if strings.Contains(s, "splicecheck kmsg test:") {
			mine = append(mine, s)
		}
	}
	if len(mine) != 2 || !strings.HasSuffix(mine[0], "first") || !strings.HasSuffix(mine[1], "second") {
		t.Fatalf("messages %q, want the two planted in order", m)
	}
	m, err = k.Messages()
	for _, s := range m {
		if strings.Contains(s, "splicecheck kmsg test:") {
			t.Fatalf("second read: %q; the planted records again", m)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
}

package trace

import (
	"syscall"
	"testing"
)

// TestErrqueueRoundTrip: what ErrqueueResult renders, ParseErrqueue reads
// back; an errno and another origin's notification list no completion.
func TestErrqueueRoundTrip(t *testing.T) {
	ns := []Notification{
		{Origin: OriginZerocopy, Info: 0, Data: 0, Code: CodeZerocopyCopied},
		{Origin: OriginZerocopy, Info: 1, Data: 4},
	}
	r := ErrqueueResult(ns)
	if got := r.String(); got != "[0,0] copied, [1,4]" {
		t.Fatalf("rendered %q", got)
	}
	back, ok := ParseErrqueue(r)
	if !ok || len(back) != 2 || back[0] != ns[0] || back[1] != ns[1] {
		t.Fatalf("parsed %+v, %v", back, ok)
	}
	if _, ok := ParseErrqueue(Fail(syscall.EAGAIN)); ok {
		t.Error("-EAGAIN lists a completion")
	}
	other := ErrqueueResult([]Notification{{Origin: 2, Errno: 111}})
	if other.String() != "origin 2 errno 111 code 0 info 0 data 0" {
		t.Errorf("other origin rendered %q", other.String())
	}
	if _, ok := ParseErrqueue(other); ok {
		t.Error("another origin's notification parsed as a completion")
	}
}

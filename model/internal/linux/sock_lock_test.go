package linux

import (
	"fmt"
	"testing"
)

// TestLockedAssertsOwner: a ...Locked function called by a task that
// does not own the socket panics with sock_owned_by_me's message, before
// it does anything; the owner passes the check.
func TestLockedAssertsOwner(t *testing.T) {
	k, me, a, _ := testKernel(nil)
	other := &task{Name: "other", s: k.s, abortAt: noDeadline}
	send := func() (msg string) {
		defer func() {
			if p := recover(); p != nil {
				msg = fmt.Sprint(p)
			}
		}()
		k.tcp.SendmsgLocked(me, a, newSrcKernel([]byte("x"), nil), msgDontwait)
		return ""
	}

	if got, want := send(), "model: sock_owned_by_me(a1) by test while not owned"; got != want {
		t.Errorf("SendmsgLocked without the lock: panic %q, want %q", got, want)
	}
	if tcpSk(a).WriteSeq != tcpISN {
		t.Errorf("SendmsgLocked without the lock sent bytes")
	}

	a.lockSock(other)
	if got, want := send(), "model: sock_owned_by_me(a1) by test while owned by other"; got != want {
		t.Errorf("SendmsgLocked with another task's lock: panic %q, want %q", got, want)
	}
	a.releaseSock()

	a.lockSock(me)
	a.sockOwnedByMe(me) // must not panic
	a.releaseSock()
}

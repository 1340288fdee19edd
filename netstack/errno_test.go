package netstack

import (
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"gvisor.dev/gvisor/pkg/tcpip"
)

// wantErrno is the translation written out independently of errnoTable:
// what Linux returns for the condition each gVisor error stands for.
var wantErrno = []struct {
	err  tcpip.Error
	want syscall.Errno
}{
	{&tcpip.ErrAborted{}, syscall.EPIPE},
	{&tcpip.ErrAddressFamilyNotSupported{}, syscall.EAFNOSUPPORT},
	{&tcpip.ErrAlreadyBound{}, syscall.EINVAL},
	{&tcpip.ErrAlreadyConnected{}, syscall.EISCONN},
	{&tcpip.ErrAlreadyConnecting{}, syscall.EALREADY},
	{&tcpip.ErrBadAddress{}, syscall.EFAULT},
	{&tcpip.ErrBadBuffer{}, syscall.EFAULT},
	{&tcpip.ErrBadLocalAddress{}, syscall.EADDRNOTAVAIL},
	{&tcpip.ErrBroadcastDisabled{}, syscall.EACCES},
	{&tcpip.ErrClosedForReceive{}, 0},
	{&tcpip.ErrClosedForSend{}, syscall.EPIPE},
	{&tcpip.ErrConnectStarted{}, syscall.EINPROGRESS},
	{&tcpip.ErrConnectionAborted{}, syscall.ECONNABORTED},
	{&tcpip.ErrConnectionRefused{}, syscall.ECONNREFUSED},
	{&tcpip.ErrConnectionReset{}, syscall.ECONNRESET},
	{&tcpip.ErrDestinationRequired{}, syscall.EDESTADDRREQ},
	{&tcpip.ErrDuplicateAddress{}, syscall.EEXIST},
	{&tcpip.ErrDuplicateNICID{}, syscall.EEXIST},
	{&tcpip.ErrEndpointBusy{}, syscall.EBUSY},
	{&tcpip.ErrHostDown{}, syscall.EHOSTDOWN},
	{&tcpip.ErrHostUnreachable{}, syscall.EHOSTUNREACH},
	{&tcpip.ErrInvalidEndpointState{}, syscall.EINVAL},
	{&tcpip.ErrInvalidNICID{}, syscall.EINVAL},
	{&tcpip.ErrInvalidOptionValue{}, syscall.EINVAL},
	{&tcpip.ErrInvalidPortRange{}, syscall.EINVAL},
	{&tcpip.ErrMalformedHeader{}, syscall.EINVAL},
	{&tcpip.ErrMessageTooLong{}, syscall.EMSGSIZE},
	{&tcpip.ErrMissingRequiredFields{}, syscall.EINVAL},
	{&tcpip.ErrMulticastInputCannotBeOutput{}, syscall.EINVAL},
	{&tcpip.ErrNetworkUnreachable{}, syscall.ENETUNREACH},
	{&tcpip.ErrNoBufferSpace{}, syscall.ENOBUFS},
	{&tcpip.ErrNoNet{}, syscall.ENONET},
	{&tcpip.ErrNoPortAvailable{}, syscall.EAGAIN},
	{&tcpip.ErrNoSuchFile{}, syscall.ENOENT},
	{&tcpip.ErrNotConnected{}, syscall.ENOTCONN},
	{&tcpip.ErrNotPermitted{}, syscall.EPERM},
	{&tcpip.ErrNotSupported{}, syscall.EOPNOTSUPP},
	{&tcpip.ErrPortInUse{}, syscall.EADDRINUSE},
	{&tcpip.ErrQueueSizeNotSupported{}, syscall.ENOTTY},
	{&tcpip.ErrTimeout{}, syscall.ETIMEDOUT},
	{&tcpip.ErrUnknownDevice{}, syscall.ENODEV},
	{&tcpip.ErrUnknownNICID{}, syscall.ENODEV},
	{&tcpip.ErrUnknownProtocol{}, syscall.EINVAL},
	{&tcpip.ErrUnknownProtocolOption{}, syscall.ENOPROTOOPT},
	{&tcpip.ErrWouldBlock{}, syscall.EAGAIN},
}

// TestErrnoEveryEntry: every gVisor error translates to its Linux errno,
// through opError too (matched with errors.Is, the text unused), and the
// table has no entry the expectations lack.
func TestErrnoEveryEntry(t *testing.T) {
	seen := map[reflect.Type]bool{}
	for _, c := range wantErrno {
		typ := reflect.TypeOf(c.err)
		seen[typ] = true
		if _, ok := errnoTable[typ]; !ok {
			t.Errorf("%v: no table entry", typ)
			continue
		}
		if got := errnoOf(c.err); got != c.want {
			t.Errorf("errnoOf(%v) = %d, want %d (%v)", typ, got, c.want, c.want)
		}
		err := opError("op", c.err)
		var oe *sockOpError
		if !errors.As(err, &oe) || oe.Errno != c.want || oe.Op != "op" {
			t.Errorf("opError(%v) = %#v", typ, err)
		}
		if c.want != 0 && !errors.Is(err, c.want) {
			t.Errorf("errors.Is(opError(%v), %v) is false", typ, c.want)
		}
	}
	for typ := range errnoTable {
		if !seen[typ] {
			t.Errorf("table entry %v has no expectation in this test", typ)
		}
	}
	if got := errnoOf(nil); got != 0 {
		t.Errorf("errnoOf(nil) = %d", got)
	}
}

// TestErrnoTableComplete: the table covers every error type of the
// pinned gVisor version, read from its source in the module cache.
func TestErrnoTableComplete(t *testing.T) {
	dir := gvisorDir(t)
	f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(dir, "pkg", "tcpip", "errors.go"), nil, 0)
	if err != nil {
		t.Skipf("gVisor's source is not readable here: %v", err)
	}
	have := map[string]bool{}
	for typ := range errnoTable {
		have[typ.Elem().Name()] = true
	}
	n := 0
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.TYPE {
			continue
		}
		for _, s := range g.Specs {
			ts := s.(*ast.TypeSpec)
			if _, isStruct := ts.Type.(*ast.StructType); !isStruct || !strings.HasPrefix(ts.Name.Name, "Err") {
				continue
			}
			n++
			if !have[ts.Name.Name] {
				t.Errorf("tcpip.%s has no errno table entry", ts.Name.Name)
			}
		}
	}
	if n != len(errnoTable) {
		t.Errorf("gVisor declares %d error types, the table has %d entries", n, len(errnoTable))
	}
}

// gvisorDir finds the pinned gVisor module's source directory.
func gvisorDir(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "gvisor.dev/gvisor").Output()
	dir := strings.TrimSpace(string(out))
	if err != nil || dir == "" {
		t.Skipf("go list -m gvisor.dev/gvisor: %v", err)
	}
	return dir
}

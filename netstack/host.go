package netstack

import (
	"context"
	"fmt"
	"net/netip"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// host is one gVisor stack of a topology, with one NIC and one IPv4
// address. The topology owns it: it lives until the topology's Close.
type host struct {
	t    *topology
	name string
	s    *stack.Stack
	addr tcpip.Address
}

// Name returns the host's name ("lo", "a", "b").
func (h *host) Name() string { return h.name }

// Addr returns the host's IPv4 address.
func (h *host) Addr() netip.Addr { return netip.AddrFrom4(h.addr.As4()) }

// NICDrops returns how many packets the host's NIC dropped for lack of
// queue space (gVisor's TxPacketsDroppedNoBufferSpace): drops that no
// link saw. It must stay 0; a non-zero value means channelQueue is too
// small.
func (h *host) NICDrops() uint64 {
	return h.s.Stats().NICs.TxPacketsDroppedNoBufferSpace.Value()
}

// newEndpoint creates a TCP endpoint on h with its own wait queue.
func (h *host) newEndpoint() (tcpip.Endpoint, *waiter.Queue, error) {
	if h.t.isClosed() {
		return nil, nil, errClosed
	}
	wq := new(waiter.Queue)
	ep, err := h.s.NewEndpoint(tcp.ProtocolNumber, ipv4.ProtocolNumber, wq)
	if err != nil {
		return nil, nil, opError("socket", err)
	}
	return ep, wq, nil
}

// Listen makes a listening endpoint on h's address and port (0: an
// ephemeral port) with the given accept backlog (0: a default of 16).
func (h *host) Listen(port uint16, backlog int) (*listener, error) {
	if backlog < 0 {
		return nil, fmt.Errorf("%w: backlog %d", errBadOption, backlog)
	}
	if backlog == 0 {
		backlog = defaultBacklog
	}
	ep, wq, err := h.newEndpoint()
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	if err := ep.Bind(tcpip.FullAddress{NIC: nicID, Addr: h.addr, Port: port}); err != nil {
		ep.Close()
		return nil, opError("bind", err)
	}
	if err := ep.Listen(backlog); err != nil {
		ep.Close()
		return nil, opError("listen", err)
	}
	return &listener{host: h, ep: ep, wq: wq}, nil
}

// Connect makes an endpoint on h and connects it to to, blocking until
// the handshake completes, fails, or ctx ends (then the endpoint is
// closed and ctx's error returned, wrapped). On the manual clock a lost
// SYN is retransmitted only when the harness advances time.
func (h *host) Connect(ctx context.Context, to netip.AddrPort) (*conn, error) {
	if !to.Addr().Is4() {
		return nil, fmt.Errorf("%w: %s is not IPv4", errBadOption, to)
	}
	ep, wq, err := h.newEndpoint()
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	// Register before Connect so that the completion cannot be missed.
	entry, ch := waiter.NewChannelEntry(waiter.WritableEvents | waiter.EventHUp | waiter.EventErr)
	wq.EventRegister(&entry)
	defer wq.EventUnregister(&entry)
	terr := ep.Connect(tcpip.FullAddress{NIC: nicID, Addr: tcpip.AddrFrom4(to.Addr().As4()), Port: to.Port()})
	if _, ok := terr.(*tcpip.ErrConnectStarted); ok {
		for {
			st := tcp.EndpointState(ep.State())
			if st != tcp.StateConnecting && st != tcp.StateSynSent {
				break
			}
			select {
			case <-ch:
			case <-ctx.Done():
				ep.Close()
				return nil, fmt.Errorf("connect %s: %w", to, ctx.Err())
			}
		}
		terr = ep.LastError()
	}
	if terr != nil {
		ep.Close()
		return nil, opError("connect", terr)
	}
	return newConn(h, ep, wq), nil
}

// listener is a listening TCP endpoint. Close it when done; the topology's
// Close also aborts it.
type listener struct {
	host *host
	ep   tcpip.Endpoint
	wq   *waiter.Queue
}

// Addr returns the address the listener is bound to.
func (l *listener) Addr() netip.AddrPort {
	a, err := l.ep.GetLocalAddress()
	if err != nil {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(netip.AddrFrom4(a.Addr.As4()), a.Port)
}

// Accept returns the next established connection, blocking until one
// completes its handshake or ctx ends.
func (l *listener) Accept(ctx context.Context) (*conn, error) {
	entry, ch := waiter.NewChannelEntry(waiter.ReadableEvents | waiter.EventHUp | waiter.EventErr)
	l.wq.EventRegister(&entry)
	defer l.wq.EventUnregister(&entry)
	for {
		if l.host.t.isClosed() {
			return nil, fmt.Errorf("accept: %w", errClosed)
		}
		ep, wq, err := l.ep.Accept(nil)
		if err == nil {
			return newConn(l.host, ep, wq), nil
		}
		if _, ok := err.(*tcpip.ErrWouldBlock); !ok {
			return nil, opError("accept", err)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, fmt.Errorf("accept: %w", ctx.Err())
		}
	}
}

// Close closes the listener; connections not yet accepted are reset.
func (l *listener) Close() error {
	l.ep.Close()
	return nil
}

// dial builds one established connection from a to b, as the trace
// language's `conn A B`: b listens on an ephemeral port, a connects, b
// accepts, and the listener is closed. It returns a's end (the active
// opener) and b's end. a and b may be the same host (loopback) and must
// belong to the same topology. On error nothing is left open.
func dial(ctx context.Context, a, b *host) (active, passive *conn, err error) {
	if a.t != b.t {
		return nil, nil, fmt.Errorf("%w: hosts of different topologies", errBadOption)
	}
	ln, err := b.Listen(ephemeralListen, 1)
	if err != nil {
		return nil, nil, fmt.Errorf("dial: %w", err)
	}
	defer ln.Close()
	ca, err := a.Connect(ctx, ln.Addr())
	if err != nil {
		return nil, nil, fmt.Errorf("dial: %w", err)
	}
	cb, err := ln.Accept(ctx)
	if err != nil {
		ca.Abort()
		return nil, nil, fmt.Errorf("dial: %w", err)
	}
	return ca, cb, nil
}

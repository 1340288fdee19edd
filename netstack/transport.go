package netstack

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/splicecheck/splicecheck/model"
)

// transport is gVisor as the model's TCP layer: the model.Transport of
// splicecheck's `netstack` backend. Each `conn A B` of a trace is one
// Dial on the topology; the model drives everything from its scheduler
// (one call at a time), settles the stacks after every call that may
// have moved segments, and moves the manual clock with its virtual time.
//
// Life cycle: newTransport builds the topology; Close closes it and
// waits until no goroutine of it is left. The model's backend closes the
// transport at the end of every run (model.Config.Transport).
type transport struct {
	topo  topologyCtl
	links *topology // the topology's Links, for holding segments
	a, b  *host
	two   *twoHost // nil on loopback
	conns []*conn
	// holding is set while the links hold arriving segments
	// (HoldSegments).
	holding bool
}

// topologyCtl is what transport needs of a topology.
type topologyCtl interface {
	Settle() error
	NextTimer() (time.Duration, bool)
	Advance(d time.Duration) error
	Close() error
	Wait() error
}

// TransportOptions configure a transport.
type TransportOptions struct {
	// Options configure the topology (MTU, seed, pcap). The transport
	// always runs on the manual clock: Options.RealClock is refused.
	Options
	// TwoHost puts the connections between two stacks joined by Links
	// (newTwoHost) instead of on one loopback stack (newLoopback).
	TwoHost bool
}

// dialTimeout bounds a handshake in wall time. It is not a
// synchronisation: Dial waits for the handshake's completion; the bound
// turns a handshake that cannot complete (a held link) into an error
// instead of a hang.
const dialTimeout = 10 * time.Second

var _ model.HoldingTransport = (*transport)(nil)

// newTransport builds the topology opts selects. The caller owns the
// result and must Close it.
func newTransport(opts TransportOptions) (*transport, error) {
	if opts.RealClock {
		return nil, fmt.Errorf("%w: the model's transport runs on the manual clock", errBadOption)
	}
	if opts.TwoHost {
		th, err := newTwoHost(opts.Options)
		if err != nil {
			return nil, err
		}
		return &transport{topo: th, links: th.t, a: th.A(), b: th.B(), two: th}, nil
	}
	lo, err := newLoopback(opts.Options)
	if err != nil {
		return nil, err
	}
	return &transport{topo: lo, links: lo.t, a: lo.Host(), b: lo.Host()}, nil
}

// NewBackend returns the `netstack` backend: the model (cfg: its
// mutations, liveness and provenance settings) on a fresh gVisor
// transport of the topology opts selects for every run. It is the one
// way the netstack backend is built.
func NewBackend(opts TransportOptions, cfg model.Config) (*model.Backend, error) {
	cfg.Name = "netstack"
	cfg.Transport = func() (model.Transport, error) { return newTransport(opts) }
	return model.NewWithConfig(cfg)
}

// TwoHost returns the two-host topology (for its Links), or nil on
// loopback.
func (t *transport) TwoHost() *twoHost { return t.two }

// Dial implements model.Transport: a connects, b is accepted.
//
// While segments are held (HoldSegments) the handshake's segments pass:
// the links stop holding for the Dial and hold again once the stacks
// settled after it. Segments held before stay held.
func (t *transport) Dial() (model.Endpoint, model.Endpoint, error) {
	if t.holding {
		if err := t.links.unhold(); err != nil {
			return nil, nil, err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
	defer cancel()
	a, b, err := dial(ctx, t.a, t.b)
	if t.holding {
		err = errors.Join(err, t.topo.Settle(), t.links.hold())
	}
	if err != nil {
		return nil, nil, err
	}
	t.conns = append(t.conns, a, b)
	return endpoint{a, a.LocalAddr()}, endpoint{b, b.LocalAddr()}, nil
}

// HoldSegments implements model.HoldingTransport: on, the topology's
// Links hold every segment that arrives (link.Hold); off, they pass
// segments again and keep what they hold (link.Unhold).
//
// A held segment is one that left its sender and that the receiver's
// NET_RX softirq has not processed yet: between two hosts it is on the
// wire or in the NIC's ring; on loopback it waits on a CPU's backlog
// (loopback_xmit → netif_rx → enqueue_to_backlog, net/core/dev.c,
// v6.18) for net_rx_action, which runs later, on another CPU or from
// ksoftirqd.
func (t *transport) HoldSegments(on bool) error {
	if on == t.holding {
		return nil
	}
	var err error
	if on {
		err = t.links.hold()
	} else {
		err = t.links.unhold()
	}
	if err != nil {
		return err
	}
	t.holding = on
	return nil
}

// HeldSegments implements model.HoldingTransport: the segments the
// topology's Links hold to the endpoint to (all of them when to is
// nil) and their payload bytes.
func (t *transport) HeldSegments(to model.Endpoint) (segs, bytes int) {
	var dst netip.AddrPort
	if to != nil {
		e, ok := to.(endpoint)
		if !ok || !e.local.IsValid() {
			return 0, 0
		}
		dst = e.local
	}
	return t.links.held(dst)
}

// DeliverOne implements model.HoldingTransport: the segment held
// longest (on either link, between two hosts) is injected into its
// receiver (topology.releaseOldest); the model settles the stacks after it.
func (t *transport) DeliverOne() error { return t.links.releaseOldest() }

// Settle implements model.Transport (loopback.Settle, twoHost.Settle).
func (t *transport) Settle() error { return t.topo.Settle() }

// Advance implements model.Transport: the manual clock moves by d, its
// due timers run, then the stacks settle.
func (t *transport) Advance(d time.Duration) error {
	if err := t.topo.Advance(d); err != nil {
		return err
	}
	return t.topo.Settle()
}

// NextTimer implements model.Transport: the manual clock's next timer.
func (t *transport) NextTimer() (time.Duration, bool) { return t.topo.NextTimer() }

// Close implements model.Transport: it closes the topology (open
// endpoints are aborted) and waits for every goroutine of it.
func (t *transport) Close() error {
	return errors.Join(t.topo.Close(), t.topo.Wait())
}

// endpoint is a conn as a model.Endpoint; local is its address, the
// destination of the segments to it.
type endpoint struct {
	c     *conn
	local netip.AddrPort
}

// Write corks the endpoint for a write with more (MSG_MORE) and uncorks
// it, which sends what the cork held, for a write without.
func (e endpoint) Write(p []byte, more bool) (int, error) {
	if more != e.c.Corked() {
		if err := e.c.SetCork(more); err != nil {
			return 0, err
		}
	}
	return e.c.Write(p)
}

func (e endpoint) Read(p []byte, peek bool) (int, error) {
	if peek {
		return e.c.Peek(p)
	}
	return e.c.Read(p)
}

func (e endpoint) ReadableBytes() int {
	n, err := e.c.ReadableBytes()
	if err != nil {
		return 0
	}
	return n
}

func (e endpoint) Writable() bool { return e.c.Readiness()&eventOut != 0 }

func (e endpoint) Shutdown(how int) error {
	var h shutHow
	if how&model.ShutdownRead != 0 {
		h |= shutRd
	}
	if how&model.ShutdownWrite != 0 {
		h |= shutWr
		if err := e.uncorkForFin(); err != nil {
			return err
		}
	}
	return e.c.Shutdown(h)
}

func (e endpoint) Close(rst bool) error {
	if rst {
		if err := e.c.SetLinger(true, 0); err != nil {
			return err
		}
	} else if err := e.uncorkForFin(); err != nil {
		return err
	}
	return e.c.Close()
}

// uncorkForFin sends what a write with more left corked before a FIN:
// Linux's tcp_send_fin pushes the write queue with TCP_NAGLE_OFF, so
// bytes a MSG_MORE send held go out with the FIN of shutdown(SHUT_WR) or
// close; gVisor keeps them corked, and its FIN behind them (golden
// kf_cork61_shutdown_releases_held).
func (e endpoint) uncorkForFin() error {
	if !e.c.Corked() {
		return nil
	}
	return e.c.SetCork(false)
}

func (e endpoint) Err() error            { return e.c.Err() }
func (e endpoint) State() string         { return e.c.State() }
func (e endpoint) SetRcvBuf(n int) error { return e.c.SetRcvBuf(n) }
func (e endpoint) SetSndBuf(n int) error { return e.c.SetSndBuf(n) }

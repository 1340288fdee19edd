//go:build crosscheck

package crosscheck

import (
	"context"
	"errors"
	"fmt"

	"github.com/splicecheck/splicecheck/kernelshim/vm"
	"github.com/splicecheck/splicecheck/trace"
)

// guestPool is the vm backend spread over several guests of one image: a
// guest runs one trace at a time, so a campaign of jobs traces at a time
// boots jobs guests. Each trace takes whichever guest is free.
type guestPool struct {
	all  []*vm.Session
	free chan *vm.Session
}

func newGuestPool(cfg vm.Config, n int) (*guestPool, error) {
	p := &guestPool{free: make(chan *vm.Session, n)}
	for range n {
		s, err := vm.NewSession(cfg)
		if err != nil {
			return nil, errors.Join(err, p.Close())
		}
		p.all = append(p.all, s)
		p.free <- s
	}
	return p, nil
}

func (p *guestPool) Name() string { return "vm" }

// Run runs t on the first guest free.
func (p *guestPool) Run(ctx context.Context, t *trace.Trace, opts trace.Options) (trace.RunResult, error) {
	var s *vm.Session
	select {
	case s = <-p.free:
	case <-ctx.Done():
		return trace.RunResult{}, ctx.Err()
	}
	defer func() { p.free <- s }()
	return s.Run(ctx, t, opts)
}

// Close shuts every guest down.
func (p *guestPool) Close() error {
	var errs []error
	for _, s := range p.all {
		errs = append(errs, s.Close())
	}
	return errors.Join(errs...)
}

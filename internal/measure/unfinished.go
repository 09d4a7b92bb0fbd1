package measure

import (
	"context"
	"errors"
	"net/netip"

	"github.com/v6matrix/v6matrix/internal/result"
	"github.com/v6matrix/v6matrix/internal/store"
)

// Unfinished is what a run still has to measure, as its store has it at one moment:
// the addresses with probes left and the domains with name server checks left (what a
// resume would do). A result not yet saved counts as left, so whatever is not here is
// final.
type Unfinished struct {
	Addrs   map[netip.Addr]bool // unmapped
	Domains map[string]bool
}

// Later reports whether a domain's summary must wait for the run's end: one of its
// addresses or its name server checks is unfinished. d is a store.Details domain.
func (u *Unfinished) Later(d *store.Detail) bool {
	if u.Domains[d.Name] {
		return true
	}
	for _, ref := range d.Hosts {
		h := d.HostsByName[ref.Name]
		for _, ips := range [][]netip.Addr{h.V4, h.V6} {
			for _, ip := range ips {
				if u.Addrs[ip.Unmap()] {
					return true
				}
			}
		}
	}
	return false
}

// Unfinished reads from the store what the run still has to measure (Progress.Unfinished).
func (s *Stage) unfinished(ctx context.Context) (*Unfinished, error) {
	if s.cfg.Part != nil {
		return nil, errors.New("measure: a part of a run does not know what the run has left")
	}
	u := &Unfinished{Addrs: map[netip.Addr]bool{}, Domains: map[string]bool{}}
	const page = 1000
	for after := ""; ; {
		ts, err := s.st.Targets(ctx, s.run, s.cfg.Vantage, after, page)
		if err != nil {
			return nil, err
		}
		for _, t := range ts {
			if s.left(t) != 0 {
				u.Addrs[t.IP.Unmap()] = true
			}
		}
		if len(ts) < page {
			break
		}
		after = ts[len(ts)-1].IP.String()
	}
	if s.ns == nil {
		return u, nil
	}
	for after := (store.NSCursor{}); ; {
		ns, err := s.st.PendingNSTargets(ctx, s.run, s.cfg.Vantage, after, page)
		if err != nil {
			return nil, err
		}
		for _, n := range ns {
			// A pair whose address the gate refuses is never checked (nsChecks.addLocked):
			// it stays pending, and its domain is final all the same.
			if ok, _ := s.cfg.Gate.Allowed(n.IP); ok {
				u.Domains[n.Domain] = true
			}
		}
		if len(ns) < page {
			return u, nil
		}
		after = store.NSCursor{Domain: ns[len(ns)-1].Domain, IP: ns[len(ns)-1].IP.String()}
	}
}

// left returns the kinds a stored target still needs, as a resume queues them
// (addLocked): its roles' kinds less those measured; only GeoIP, and the record of the
// skip, for an address not probed.
func (s *Stage) left(t store.Target) kindSet {
	measured := setOf(t.Measured)
	kinds := setOf(targetOf(t, t.Roles).kinds(s.cfg.Kinds))
	if allowed, _ := s.allowed(t.IP, measured); !allowed {
		kinds = kinds&kindBit(result.KindGeo) | kindBit(result.KindSkipped)
	}
	return kinds &^ measured
}

package store

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"reflect"

	"github.com/v6matrix/v6matrix/internal/domains"
	"github.com/v6matrix/v6matrix/internal/result"
)

// copyBatch is how many domains Copy writes per transaction.
const copyBatch = 1000

// Copy copies run from one store to another through the Store interface, so any two
// implementations can exchange runs: the run row, its domains (finished or not), the
// hosts and addresses they reference, every measurement of a kind this version knows,
// the domains' name server checks (both from every vantage), the stored list, the probe stage's input (targets
// and name server pairs, so that an unfinished copy resumes as the original would)
// and the domains' documents. It returns the run's id in the target (the next free
// one there). The summary is not copied: summary.Build it in the target (which writes
// the documents again, the same).
func Copy(ctx context.Context, from, to Store, run int64) (int64, error) {
	r, err := from.GetRun(ctx, run)
	if err != nil {
		return 0, err
	}
	id, err := to.CreateRun(ctx, r)
	if err != nil {
		return 0, err
	}
	if err := copyList(ctx, from, to, run, id); err != nil {
		return 0, fmt.Errorf("copy run %d: %w", run, err)
	}
	documented, err := from.Documented(ctx, run)
	if err != nil {
		return 0, fmt.Errorf("copy run %d: %w", run, err)
	}
	c := copier{to: to, run: id, hosts: map[string]bool{}, saved: map[netip.Addr]bool{}, addrs: map[netip.Addr]bool{}}
	var names []string // of the domains, when they have documents
	err = from.Details(ctx, run, "", func(d Detail) error {
		c.add(&d)
		if documented {
			names = append(names, d.Name)
		}
		if len(c.entries) >= copyBatch {
			return c.flush(ctx)
		}
		return nil
	})
	if err == nil {
		err = c.flush(ctx)
	}
	if err == nil {
		err = copyTargets(ctx, from, to, run, id)
	}
	if err == nil {
		err = copyDocs(ctx, from, to, run, id, names)
	}
	if err == nil {
		err = copyVantages(ctx, from, to, run, id)
	}
	if err != nil {
		return 0, fmt.Errorf("copy run %d: %w", run, err)
	}
	r.ID = id
	return id, to.UpdateRun(ctx, r)
}

// copyTargets copies the run's targets and name server pairs as stored, a page per
// transaction.
func copyTargets(ctx context.Context, from, to Store, run, id int64) error {
	for after := ""; ; {
		ts, err := from.Targets(ctx, run, "", after, copyBatch)
		if err != nil {
			return err
		}
		if len(ts) == 0 {
			break
		}
		for i := range ts {
			ts[i].Measured = nil // the copied measurements say it
		}
		if err := to.Save(ctx, id, Batch{Targets: ts}); err != nil {
			return err
		}
		after = ts[len(ts)-1].IP.String()
	}
	for after := (NSCursor{}); ; {
		ns, err := from.NSTargets(ctx, run, after, copyBatch)
		if err != nil || len(ns) == 0 {
			return err
		}
		if err := to.Save(ctx, id, Batch{NSTargets: ns}); err != nil {
			return err
		}
		last := ns[len(ns)-1]
		after = NSCursor{Domain: last.Domain, IP: last.IP.String()}
	}
}

// copyVantages copies the measurements and checks of the run's vantages other than
// its own (Copy copied the rest).
func copyVantages(ctx context.Context, from, to Store, run, id int64) error {
	vs, err := from.Vantages(ctx, run)
	if err != nil {
		return err
	}
	for _, v := range vs[1:] {
		c := copier{to: to, run: id, addrs: map[netip.Addr]bool{}}
		err := from.Details(ctx, run, v, func(d Detail) error {
			c.results(&d, v)
			if len(c.ms) >= copyBatch {
				return c.flush(ctx)
			}
			return nil
		})
		if err == nil {
			err = c.flush(ctx)
		}
		if err != nil {
			return fmt.Errorf("vantage %s: %w", v, err)
		}
	}
	return nil
}

// copyDocs copies the documents of the named domains.
func copyDocs(ctx context.Context, from, to Store, run, id int64, names []string) error {
	var ds []Detail
	for _, name := range names {
		d, err := from.DomainDoc(ctx, run, name)
		if errors.Is(err, ErrNotFound) {
			continue // a domain listed after the summary
		}
		if err != nil {
			return err
		}
		if ds = append(ds, d); len(ds) == copyBatch {
			if err := to.SaveDocs(ctx, Claim{Run: id}, ds); err != nil {
				return err
			}
			ds = ds[:0]
		}
	}
	if len(ds) > 0 {
		return to.SaveDocs(ctx, Claim{Run: id}, ds)
	}
	return nil
}

// copyList copies the run's stored list, when it has one.
func copyList(ctx context.Context, from, to Store, run, id int64) error {
	l, err := from.OpenList(ctx, run)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	defer l.Close()
	_, _, err = to.SaveList(ctx, id, l)
	return err
}

// copier collects a batch of a copied run.
type copier struct {
	to      Store
	run     int64
	entries []domains.Entry
	batch   Batch
	ms      []Measurement
	hosts   map[string]bool     // already copied
	saved   map[netip.Addr]bool // addresses already copied
	addrs   map[netip.Addr]bool // addresses whose measurements are already copied
}

func (c *copier) add(d *Detail) {
	c.entries = append(c.entries, domains.Entry{Rank: d.Rank, Name: d.Name, TLD: d.TLD, Suffix: d.Suffix})
	if d.Status == "" {
		return // listed, not measured yet
	}
	c.batch.Domains = append(c.batch.Domains, d.Domain)
	for _, ref := range d.Hosts {
		h, ok := d.HostsByName[ref.Name]
		if !ok || c.hosts[h.Name] {
			continue
		}
		c.hosts[h.Name] = true
		c.batch.Hosts = append(c.batch.Hosts, h)
		for _, ip := range append(h.V4[:len(h.V4):len(h.V4)], h.V6...) {
			if a, ok := d.Addrs[ip]; ok && !c.saved[ip] {
				c.saved[ip] = true
				c.batch.Addresses = append(c.batch.Addresses, result.Address{IP: a.IP, Class: a.Class})
			}
		}
	}
	c.results(d, "")
}

// results adds the domain's checks and the measurements of its addresses not copied
// yet, under vantage v ("" the run's own).
func (c *copier) results(d *Detail, v string) {
	for ip, chk := range d.NSChecks {
		c.ms = append(c.ms, Measurement{IP: ip, Kind: result.KindDNS53, Value: chk, Domain: d.Name, Vantage: v})
	}
	for _, ref := range d.Hosts {
		h, ok := d.HostsByName[ref.Name]
		if !ok {
			continue
		}
		for _, ip := range append(h.V4[:len(h.V4):len(h.V4)], h.V6...) {
			a, ok := d.Addrs[ip]
			if !ok || c.addrs[ip] {
				continue
			}
			c.addrs[ip] = true
			for _, k := range result.Kinds {
				if val := reflect.ValueOf(a.Measurement(k)).Elem(); !val.IsZero() {
					c.ms = append(c.ms, Measurement{IP: ip, Kind: k, Value: val.Interface(), Vantage: v})
				}
			}
		}
	}
}

func (c *copier) flush(ctx context.Context) error {
	if len(c.entries) == 0 && len(c.ms) == 0 {
		return nil
	}
	if len(c.entries) > 0 {
		if _, err := c.to.AddDomains(ctx, c.run, c.entries); err != nil {
			return err
		}
		if err := c.to.Save(ctx, c.run, c.batch); err != nil {
			return err
		}
	}
	if err := c.to.SaveMeasurements(ctx, c.run, c.ms); err != nil {
		return err
	}
	c.entries, c.batch, c.ms = c.entries[:0], Batch{}, c.ms[:0]
	return nil
}

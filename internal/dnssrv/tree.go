package dnssrv

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// TreeServer describes one authoritative server of a Tree.
type TreeServer struct {
	// Name identifies the server in Tree.Auth (e.g. "a.root-servers.net").
	Name string
	// Addr is its loopback address (e.g. 127.0.1.1); glue and NS address
	// records in the zones must use it.
	Addr netip.Addr
	// Zones maps each zone origin the server holds to its master file text.
	// A server holding "." is a root server for the Tree's recursor.
	Zones map[string]string
	// Faults are set on the server before it starts (owner name -> fault).
	Faults map[string]Fault
}

// TreeConfig describes a delegation tree of authoritative servers.
type TreeConfig struct {
	Servers []TreeServer
	// Timeout is the recursor's per-query upstream timeout (0: 200ms).
	Timeout time.Duration
}

// Tree is a running delegation tree: authoritative servers on distinct
// loopback addresses sharing one random port, and a recursor that starts
// from the servers holding the root zone.
type Tree struct {
	// Port is the port every authoritative server of the tree listens on.
	Port uint16
	// Recursor resolves through the tree; its counters serve tests.
	Recursor *Recursor
	// RecursorAddr is where the recursor listens (UDP and TCP).
	RecursorAddr netip.AddrPort

	auths   map[string]*Auth
	servers []*Server
}

// treeAttempts bounds the search for a port free on every server address.
const treeAttempts = 10

// StartTree parses the zones and starts the servers and the recursor; they
// stop on Close or when ctx ends.
func StartTree(ctx context.Context, cfg TreeConfig) (*Tree, error) {
	if len(cfg.Servers) == 0 {
		return nil, errors.New("start tree: no servers")
	}
	t := &Tree{auths: make(map[string]*Auth)}
	var roots []netip.Addr
	for _, s := range cfg.Servers {
		var zones []*Zone
		for origin, text := range s.Zones {
			z, err := ParseZone(origin, strings.NewReader(text), s.Name+"/"+origin)
			if err != nil {
				return nil, fmt.Errorf("start tree: server %s: %w", s.Name, err)
			}
			zones = append(zones, z)
			if z.Origin() == "." {
				roots = append(roots, s.Addr)
			}
		}
		if _, dup := t.auths[s.Name]; dup {
			return nil, fmt.Errorf("start tree: two servers named %q", s.Name)
		}
		a := NewAuth(zones...)
		for name, f := range s.Faults {
			a.SetFault(name, f)
		}
		t.auths[s.Name] = a
	}
	if len(roots) == 0 {
		return nil, errors.New("start tree: no server holds the root zone")
	}
	var err error
	for range treeAttempts {
		if err = t.listenAll(ctx, cfg.Servers); err == nil {
			break
		}
		t.Close()
		t.servers = nil
	}
	if err != nil {
		return nil, fmt.Errorf("start tree: %w", err)
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = 200 * time.Millisecond
	}
	t.Recursor = &Recursor{Port: t.Port, Timeout: timeout}
	for _, a := range roots {
		t.Recursor.Roots = append(t.Recursor.Roots, netip.AddrPortFrom(a, t.Port))
	}
	rs, err := Listen(ctx, "127.0.0.1:0", t.Recursor)
	if err != nil {
		t.Close()
		return nil, fmt.Errorf("start tree: recursor: %w", err)
	}
	t.servers = append(t.servers, rs)
	t.RecursorAddr = rs.Addr()
	return t, nil
}

// listenAll starts every server on one port, chosen by the first.
func (t *Tree) listenAll(ctx context.Context, servers []TreeServer) error {
	var port uint16
	for _, s := range servers {
		srv, err := Listen(ctx, netip.AddrPortFrom(s.Addr, port).String(), t.auths[s.Name])
		if err != nil {
			return fmt.Errorf("server %s: %w", s.Name, err)
		}
		t.servers = append(t.servers, srv)
		port = srv.Addr().Port()
	}
	t.Port = port
	return nil
}

// Auth returns the authoritative server called name, or nil.
func (t *Tree) Auth(name string) *Auth { return t.auths[name] }

// Close stops every server of the tree.
func (t *Tree) Close() error {
	var errs []error
	for _, s := range t.servers {
		errs = append(errs, s.Close())
	}
	return errors.Join(errs...)
}

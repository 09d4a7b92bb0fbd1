// Package netns is the one toolkit for network namespaces, used by the lab and by every
// test that needs a router: create, open, list and delete named namespaces (bind-mounted
// under /run/netns, as iproute2 does, so that `ip netns` sees them), run a function on a
// locked OS thread inside one (sockets it opens belong to the namespace), start a process
// inside one, set sysctls, and connect two namespaces with a veth pair with addresses.
// It builds on github.com/vishvananda/netns and github.com/vishvananda/netlink.
package netns

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	vns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Handle is an open namespace (a file descriptor): Close releases it.
type Handle = vns.NsHandle

// Dir is where named network namespaces are bind-mounted (as iproute2 does).
const Dir = "/run/netns"

// Create makes a named namespace with its loopback up. The calling thread stays where
// it is: the namespace is created from a thread that is retired afterwards.
func Create(name string) (Handle, error) {
	type res struct {
		h   Handle
		err error
	}
	c := make(chan res, 1)
	go func() {
		// NewNamed moves the thread into the new namespace: no UnlockOSThread, so the
		// runtime ends the thread with the goroutine.
		runtime.LockOSThread()
		h, err := vns.NewNamed(name)
		if err != nil {
			c <- res{err: fmt.Errorf("create netns %s: %w", name, err)}
			return
		}
		if err := loopbackUp(); err != nil {
			h.Close()
			c <- res{err: fmt.Errorf("netns %s: %w", name, err)}
			return
		}
		c <- res{h: h}
	}()
	r := <-c
	return r.h, r.err
}

func loopbackUp() error {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("find lo: %w", err)
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		return fmt.Errorf("lo up: %w", err)
	}
	return nil
}

// Open opens an existing named namespace.
func Open(name string) (Handle, error) {
	h, err := vns.GetFromName(name)
	if err != nil {
		return h, fmt.Errorf("namespace %s: %w", name, err)
	}
	return h, nil
}

// Delete removes a named namespace; its links go with it once no process or open
// handle keeps it. A namespace that does not exist is an error wrapping
// os.ErrNotExist.
func Delete(name string) error {
	if err := vns.DeleteNamed(name); err != nil {
		return fmt.Errorf("delete netns %s: %w", name, err)
	}
	return nil
}

// List returns the named namespaces whose name starts with prefix.
func List(prefix string) ([]string, error) {
	ents, err := os.ReadDir(Dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list namespaces: %w", err)
	}
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix) {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// Do runs f on the calling goroutine's OS thread, locked and switched into ns, then
// switches back. Sockets f opens stay in ns and work from any goroutine afterwards;
// goroutines f starts run on other threads, outside ns. If the thread cannot be
// switched back it stays locked, so the runtime retires it with the goroutine rather
// than reuse a thread in the wrong namespace.
func Do(ns Handle, f func() error) error {
	runtime.LockOSThread()
	orig, err := vns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("get current netns: %w", err)
	}
	defer orig.Close()
	if err := vns.Set(ns); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter netns: %w", err)
	}
	ferr := f()
	if err := vns.Set(orig); err != nil {
		return errors.Join(ferr, fmt.Errorf("leave netns: %w", err))
	}
	runtime.UnlockOSThread()
	return ferr
}

// Start starts cmd inside ns, from a thread that first runs prepare (when not nil:
// e.g. a private mount namespace) and then enters ns. That thread's namespaces are
// changed for good, so it is retired. The caller waits for cmd as usual.
func Start(ns Handle, cmd *exec.Cmd, prepare func() error) error {
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the runtime ends the thread
		if prepare != nil {
			if err := prepare(); err != nil {
				started <- err
				return
			}
		}
		if err := vns.Set(ns); err != nil {
			started <- fmt.Errorf("enter netns: %w", err)
			return
		}
		started <- cmd.Start()
	}()
	return <-started
}

// Output runs a command inside ns (bounded by ctx) and returns its combined output.
func Output(ctx context.Context, ns Handle, stdin io.Reader, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var out bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, &out, &out
	if err := Start(ns, cmd, nil); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	err := cmd.Wait()
	return out.Bytes(), err
}

// WriteSysctl sets a sysctl such as "net.ipv4.ip_forward" in the calling thread's
// namespace (inside Do).
func WriteSysctl(key, value string) error {
	p := filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/"))
	if err := os.WriteFile(p, []byte(value), 0o644); err != nil {
		return fmt.Errorf("sysctl %s=%s: %w", key, value, err)
	}
	return nil
}

// Sysctls sets sysctls (key, value) inside ns, in order.
func Sysctls(ns Handle, kv ...[2]string) error {
	return Do(ns, func() error {
		for _, s := range kv {
			if err := WriteSysctl(s[0], s[1]); err != nil {
				return err
			}
		}
		return nil
	})
}

// IPNet converts a prefix, host bits kept (an interface address), to netlink's form.
func IPNet(p netip.Prefix) *net.IPNet {
	bits := 32
	if p.Addr().Is6() {
		bits = 128
	}
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), bits)}
}

// End is one end of a veth pair: its namespace, interface name and addresses.
type End struct {
	NS    Handle
	Name  string
	Addrs []netip.Prefix
}

// Veth connects two namespaces with a veth pair of the given MTU (0: the kernel's
// default) on both ends, adds each end's addresses and sets both ends up.
func Veth(a, b End, mtu int) error {
	ha, err := netlink.NewHandleAt(a.NS)
	if err != nil {
		return fmt.Errorf("veth %s: netlink: %w", a.Name, err)
	}
	defer ha.Close()
	hb, err := netlink.NewHandleAt(b.NS)
	if err != nil {
		return fmt.Errorf("veth %s: netlink: %w", b.Name, err)
	}
	defer hb.Close()
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: a.Name, MTU: mtu},
		PeerName:      b.Name,
		PeerMTU:       uint32(mtu),
		PeerNamespace: netlink.NsFd(int(b.NS)),
	}
	if err := ha.LinkAdd(veth); err != nil {
		return fmt.Errorf("add veth %s-%s: %w", a.Name, b.Name, err)
	}
	if err := LinkUp(ha, a.Name, a.Addrs...); err != nil {
		return err
	}
	return LinkUp(hb, b.Name, b.Addrs...)
}

// LinkUp adds addresses to a link (without duplicate address detection: usable at
// once) and sets it up, through h (a netlink handle in the link's namespace).
func LinkUp(h *netlink.Handle, name string, addrs ...netip.Prefix) error {
	l, err := h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("find link %s: %w", name, err)
	}
	for _, p := range addrs {
		if err := h.AddrAdd(l, &netlink.Addr{IPNet: IPNet(p), Flags: unix.IFA_F_NODAD}); err != nil {
			return fmt.Errorf("add %s to %s: %w", p, name, err)
		}
	}
	if err := h.LinkSetUp(l); err != nil {
		return fmt.Errorf("%s up: %w", name, err)
	}
	return nil
}

// WaitLinks waits until every link of h's namespace but lo is operationally up, and
// with ipv6 until none has a tentative IPv6 address and each has its link-local one.
// The kernel activates a new link's queue only when it processes the carrier event
// (up to a second later), and drops packets until then. It gives up at deadline.
func WaitLinks(h *netlink.Handle, deadline time.Time, ipv6 bool) error {
	for {
		ready, why, err := linksReady(h, ipv6)
		if err != nil || ready {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("links not ready: %s", why)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func linksReady(h *netlink.Handle, ipv6 bool) (bool, string, error) {
	links, err := h.LinkList()
	if err != nil {
		return false, "", fmt.Errorf("list links: %w", err)
	}
	for _, l := range links {
		a := l.Attrs()
		if a.Name == "lo" {
			continue
		}
		if a.OperState != netlink.OperUp {
			return false, a.Name + " is " + a.OperState.String(), nil
		}
		if !ipv6 {
			continue
		}
		addrs, err := h.AddrList(l, unix.AF_INET6)
		if err != nil {
			return false, "", fmt.Errorf("addresses of %s: %w", a.Name, err)
		}
		linkLocal := false
		for _, ad := range addrs {
			if ad.Flags&(unix.IFA_F_TENTATIVE|unix.IFA_F_DADFAILED) != 0 {
				return false, a.Name + " has tentative " + ad.IP.String(), nil
			}
			linkLocal = linkLocal || ad.IP.IsLinkLocalUnicast()
		}
		if !linkLocal {
			return false, a.Name + " has no IPv6 link-local address yet", nil
		}
	}
	return true, "", nil
}

package lab

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/vishvananda/netlink"

	"github.com/v6matrix/v6matrix/internal/netns"
)

// Status describes a running lab as found on the machine.
type Status struct {
	Prefix string
	// Namespaces are the lab's namespaces, sorted by name.
	Namespaces []NamespaceStatus
	// DaemonPID is the pid of the `lab serve` daemon, 0 when none runs.
	DaemonPID int
	// Listeners are the daemon's servers, one "kind address (detail)" line each.
	Listeners []string
}

// NamespaceStatus is one namespace and its interfaces.
type NamespaceStatus struct {
	Name       string
	Interfaces []InterfaceStatus
}

// InterfaceStatus is one interface with its MTU and global addresses.
type InterfaceStatus struct {
	Name  string
	MTU   int
	Up    bool
	Addrs []netip.Prefix
}

// ReadStatus inspects the lab with this prefix (stateDir "" means StateDir(prefix)).
func ReadStatus(prefix, stateDir string) (*Status, error) {
	if stateDir == "" {
		stateDir = StateDir(prefix)
	}
	st := &Status{Prefix: prefix}
	names, err := netns.List(prefix)
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	for _, n := range names {
		ns, err := readNamespace(n)
		if err != nil {
			return nil, err
		}
		st.Namespaces = append(st.Namespaces, ns)
	}
	if pid, err := readPID(stateDir); err == nil && alive(pid) && isLabDaemon(pid) {
		st.DaemonPID = pid
		if b, err := os.ReadFile(filepath.Join(stateDir, listenersFile)); err == nil {
			st.Listeners = strings.Split(strings.TrimSpace(string(b)), "\n")
		}
	}
	return st, nil
}

func readNamespace(name string) (NamespaceStatus, error) {
	out := NamespaceStatus{Name: name}
	ns, err := netns.Open(name)
	if err != nil {
		return out, err
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return out, fmt.Errorf("namespace %s: %w", name, err)
	}
	defer h.Close()
	links, err := h.LinkList()
	if err != nil {
		return out, fmt.Errorf("namespace %s: list links: %w", name, err)
	}
	for _, link := range links {
		a := link.Attrs()
		is := InterfaceStatus{Name: a.Name, MTU: a.MTU, Up: a.Flags&(1<<0) != 0}
		addrs, err := h.AddrList(link, netlink.FAMILY_ALL)
		if err != nil {
			return out, fmt.Errorf("namespace %s: addresses of %s: %w", name, a.Name, err)
		}
		for _, ad := range addrs {
			ip, ok := netip.AddrFromSlice(ad.IP)
			if !ok || ip.IsLinkLocalUnicast() || ip.IsLoopback() {
				continue
			}
			ones, _ := ad.Mask.Size()
			is.Addrs = append(is.Addrs, netip.PrefixFrom(ip.Unmap(), ones))
		}
		out.Interfaces = append(out.Interfaces, is)
	}
	return out, nil
}

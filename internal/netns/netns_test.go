package netns

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	vns "github.com/vishvananda/netns"
)

// TestTwoNamespaces builds two namespaces joined by a veth pair (documentation
// addresses, no route off the pair), listens in one and connects from the other,
// runs a command inside one and removes both.
func TestTwoNamespaces(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces")
	}
	var rnd [3]byte
	rand.Read(rnd[:])
	prefix := "v6mns-" + hex.EncodeToString(rnd[:]) + "-"
	host, err := vns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()

	var hs []Handle
	for _, role := range []string{"a", "b"} {
		h, err := Create(prefix + role)
		if err != nil {
			t.Fatal(err)
		}
		hs = append(hs, h)
		t.Cleanup(func() {
			h.Close()
			if err := Delete(prefix + role); err != nil {
				t.Error(err)
			}
		})
	}
	if now, err := vns.Get(); err != nil || !now.Equal(host) {
		t.Errorf("Create moved the calling thread: %v", err)
	}
	names, err := List(prefix)
	if err != nil || !slices.Equal(names, []string{prefix + "a", prefix + "b"}) {
		t.Fatalf("List = %v, %v", names, err)
	}
	a4, b4 := netip.MustParsePrefix("192.0.2.1/30"), netip.MustParsePrefix("192.0.2.2/30")
	if err := Veth(End{NS: hs[0], Name: "va", Addrs: []netip.Prefix{a4}}, End{NS: hs[1], Name: "vb", Addrs: []netip.Prefix{b4}}, 1400); err != nil {
		t.Fatal(err)
	}
	for _, h := range hs {
		nl, err := netlink.NewHandleAt(h)
		if err != nil {
			t.Fatal(err)
		}
		err = WaitLinks(nl, time.Now().Add(10*time.Second), true)
		nl.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := Sysctls(hs[1], [2]string{"net.ipv4.ip_forward", "1"}); err != nil {
		t.Fatal(err)
	}
	var fwd []byte
	if err := Do(hs[1], func() error { var err error; fwd, err = os.ReadFile("/proc/sys/net/ipv4/ip_forward"); return err }); err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(fwd)) != "1" {
		t.Errorf("ip_forward in b = %q, want 1", fwd)
	}

	// A listener opened inside b, a connection opened inside a.
	var ln net.Listener
	if err := Do(hs[1], func() error { var err error; ln, err = net.Listen("tcp", "192.0.2.2:0"); return err }); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Write([]byte("hi"))
			c.Close()
		}
	}()
	var c net.Conn
	if err := Do(hs[0], func() error {
		var err error
		c, err = net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(buf); err != nil || string(buf) != "hi" {
		t.Errorf("read %q, %v", buf, err)
	}
	c.Close()
	if now, err := vns.Get(); err != nil || !now.Equal(host) {
		t.Errorf("Do left the calling thread in another namespace: %v", err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	out, err := Output(ctx, hs[0], nil, "cat", "/proc/net/dev")
	if err != nil {
		t.Fatalf("cat in a: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "va:") || strings.Contains(string(out), "vb:") {
		t.Errorf("/proc/net/dev inside a:\n%s", out)
	}
	if err := Delete(prefix + "none"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Delete of a missing namespace = %v, want os.ErrNotExist", err)
	}
}

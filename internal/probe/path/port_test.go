package path

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/v6matrix/v6matrix/internal/netns"
)

// capture records the UDP destination ports of packets arriving on one
// interface, through an AF_PACKET socket in the interface's namespace.
type capture struct {
	fd    int
	wg    sync.WaitGroup
	mu    sync.Mutex
	ports map[int]int // destination port -> packets
	done  chan struct{}
}

func startCapture(t *testing.T, ns netns.Handle, ifname string) *capture {
	t.Helper()
	proto := int(htons(unix.ETH_P_ALL))
	c := &capture{ports: map[int]int{}, done: make(chan struct{})}
	err := inNS(ns, func() error {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, proto)
		if err != nil {
			return fmt.Errorf("AF_PACKET socket: %w", err)
		}
		c.fd = fd
		ifi, err := netlinkIndex(ifname)
		if err != nil {
			return err
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi}); err != nil {
			return fmt.Errorf("bind %s: %w", ifname, err)
		}
		tv := unix.NsecToTimeval((50 * time.Millisecond).Nanoseconds())
		return unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	})
	if err != nil {
		t.Fatalf("capture on %s: %v", ifname, err)
	}
	c.wg.Add(1)
	go c.loop()
	t.Cleanup(func() { c.stop() })
	return c
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// netlinkIndex returns an interface index in the calling thread's namespace.
func netlinkIndex(name string) (int, error) {
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return 0, err
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, ifr); err != nil {
		return 0, fmt.Errorf("interface %s: %w", name, err)
	}
	return int(ifr.Uint32()), nil
}

func (c *capture) loop() {
	defer c.wg.Done()
	buf := make([]byte, 256) // headers are enough
	for {
		select {
		case <-c.done:
			return
		default:
		}
		n, from, err := unix.Recvfrom(c.fd, buf, unix.MSG_TRUNC)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return
		}
		ll, ok := from.(*unix.SockaddrLinklayer)
		if !ok || ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		if port, ok := udpDstPort(buf[:min(n, len(buf))]); ok {
			c.mu.Lock()
			c.ports[port]++
			c.mu.Unlock()
		}
	}
}

// udpDstPort returns the UDP destination port of an IPv4 or IPv6 packet.
func udpDstPort(b []byte) (int, bool) {
	if len(b) < 1 {
		return 0, false
	}
	switch b[0] >> 4 {
	case 4:
		ihl := int(b[0]&0x0f) * 4
		if len(b) < ihl+4 || b[9] != unix.IPPROTO_UDP {
			return 0, false
		}
		return int(binary.BigEndian.Uint16(b[ihl+2:])), true
	case 6:
		if len(b) < 44 || b[6] != unix.IPPROTO_UDP {
			return 0, false
		}
		return int(binary.BigEndian.Uint16(b[42:])), true
	}
	return 0, false
}

// snapshot returns and resets the ports seen so far.
func (c *capture) snapshot() map[int]int {
	time.Sleep(100 * time.Millisecond) // let the reader catch up
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.ports
	c.ports = map[int]int{}
	return p
}

func (c *capture) stop() {
	select {
	case <-c.done:
		return
	default:
	}
	close(c.done)
	c.wg.Wait()
	unix.Close(c.fd)
}

// TestProbesUseOneDestinationPort captures, on r1's client-facing interface,
// every probe of an IPv4 and an IPv6 trace and asserts they all went to the
// configured port. tracepath, captured the same way, must show its port
// sweep, which proves the capture sees distinct ports.
func TestProbesUseOneDestinationPort(t *testing.T) {
	tp := newTopo(t)
	cap := startCapture(t, tp.ns["r1"], "r1-c")

	const port = 40404
	cfg := DefaultConfig()
	cfg.Port = port
	cfg.MaxHops = 5
	cfg.WaitPerProbe = 300 * time.Millisecond
	cfg.Socket = tp.socketIn("client")
	cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	tr, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	probes := 0
	for _, a := range []string{target4, target6} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		res, err := tr.Trace(ctx, netip.MustParseAddr(a))
		cancel()
		if err != nil || !res.Reached {
			t.Fatalf("Trace %s: %+v, %v", a, res, err)
		}
		// TTL 1, TTL 2 (too big, then again), TTL 3.
		probes += 4
	}
	got := cap.snapshot()
	if diff := cmp.Diff(map[int]int{port: probes}, got); diff != "" {
		t.Errorf("destination ports of our probes (-want +got):\n%s", diff)
	}

	if _, err := tp.exec("client", nil, "tracepath", "-n", "-4", "-m", "5", target4); err != nil {
		t.Skipf("tracepath not runnable for the contrast check: %v", err)
	}
	if sweep := cap.snapshot(); len(sweep) < 3 {
		t.Errorf("capture saw tracepath use ports %v; want its sweep of at least 3 ports", sweep)
	}
}

package path

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name   string
		modify func(*Config)
		want   string // "" for valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"max hops zero", func(c *Config) { c.MaxHops = 0 }, "path: max hops 0 out of range 1..255"},
		{"max hops 256", func(c *Config) { c.MaxHops = 256 }, "path: max hops 256 out of range 1..255"},
		{"gap limit negative", func(c *Config) { c.GapLimit = -1 }, "path: gap limit -1 out of range 0..255"},
		{"probes zero", func(c *Config) { c.ProbesPerHop = 0 }, "path: probes per hop 0 out of range 1..10"},
		{"probes 11", func(c *Config) { c.ProbesPerHop = 11 }, "path: probes per hop 11 out of range 1..10"},
		{"wait too short", func(c *Config) { c.WaitPerProbe = time.Millisecond }, "path: wait per probe 1ms out of range 10ms..1m"},
		{"wait too long", func(c *Config) { c.WaitPerProbe = 2 * time.Minute }, "path: wait per probe 2m0s out of range 10ms..1m"},
		{"port zero", func(c *Config) { c.Port = 0 }, "path: port 0 out of range 1..65535"},
		{"port 65536", func(c *Config) { c.Port = 65536 }, "path: port 65536 out of range 1..65535"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tc.modify(&cfg)
			got := ""
			if _, err := New(cfg); err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Errorf("New error = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestTraceLoopbackMatchesTracepath needs no privileges: loopback in the
// caller's namespace, both families, against tracepath.
func TestTraceLoopbackMatchesTracepath(t *testing.T) {
	if _, err := exec.LookPath("tracepath"); err != nil {
		t.Skipf("needs tracepath (Debian iputils-tracepath): %v", err)
	}
	tr, err := New(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, addr, flag string
	}{
		{"ipv4", "127.0.0.1", "-4"},
		{"ipv6", "::1", "-6"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := exec.Command("tracepath", "-n", tc.flag, "-m", "3", tc.addr).CombinedOutput()
			if err != nil {
				t.Skipf("tracepath %s: %v\n%s", tc.addr, err, out)
			}
			m := resumeRE.FindSubmatch(out)
			if m == nil {
				t.Fatalf("no Resume line:\n%s", out)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			got, err := tr.Trace(ctx, netip.MustParseAddr(tc.addr))
			if err != nil {
				t.Fatal(err)
			}
			ours := "Resume: pmtu " + strconv.Itoa(got.PMTUBytes) + " hops " + strconv.Itoa(got.Hops) + " back " + strconv.Itoa(got.Back)
			if diff := cmp.Diff(string(m[0]), ours); diff != "" {
				t.Errorf("(-tracepath +ours):\n%s", diff)
			}
			if diff := cmp.Diff([]string{tc.addr}, got.HopList); diff != "" {
				t.Errorf("HopList (-want +got):\n%s", diff)
			}
		})
	}
}

// TestTraceCanceled checks that a canceled context ends a trace with an
// error promptly, even in the middle of a 5 s wait for a silent hop.
func TestTraceCanceled(t *testing.T) {
	tp := newTopo(t)
	tp.nft("target", `table inet v6mpath {
	chain in { type filter hook input priority 0; policy drop;
		icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept
	}
}`)
	cfg := DefaultConfig()
	cfg.WaitPerProbe = 5 * time.Second
	cfg.Socket = tp.socketIn("client")
	tr, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	time.AfterFunc(500*time.Millisecond, cancel)
	start := time.Now()
	res, err := tr.Trace(ctx, netip.MustParseAddr(target4))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Trace error = %v, want context.Canceled (result %+v)", err, res)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("Trace took %v after a cancel at 500ms", el)
	}
	if len(res.HopList) < 2 {
		t.Fatalf("partial HopList %v, want the two routers first", res.HopList)
	}
	if diff := cmp.Diff([]string{r1Addr[4], r2Addr[4]}, res.HopList[:2]); diff != "" {
		t.Errorf("partial HopList (-want +got):\n%s", diff)
	}
}

// TestTraceTargetAnswersUDP covers a target with a UDP service on the probe
// port: its reply ends the trace as reached, with hops from the probe's TTL
// and back from the reply's TTL (tracepath stops there without either).
func TestTraceTargetAnswersUDP(t *testing.T) {
	tp := newTopo(t)
	const port = 40405
	var pc net.PacketConn
	err := inNS(tp.ns["target"], func() error {
		var err error
		pc, err = net.ListenPacket("udp", fmt.Sprintf(":%d", port))
		return err
	})
	if err != nil {
		t.Fatalf("listen in target: %v", err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(buf[:min(n, 16)], from)
		}
	}()

	cfg := DefaultConfig()
	cfg.Port = port
	cfg.MaxHops = 5
	cfg.WaitPerProbe = 300 * time.Millisecond
	cfg.Socket = tp.socketIn("client")
	tr, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		addr string
		want Result
	}{
		{"ipv4", target4, Result{Family: 4, PMTUBytes: 1400, Hops: 3, Back: 3,
			HopList: []string{r1Addr[4], r2Addr[4], target4}, Reached: true, Reason: ReasonReached}},
		{"ipv6", target6, Result{Family: 6, PMTUBytes: 1280, Hops: 3, Back: 3,
			HopList: []string{r1Addr[6], r2Addr[6], target6}, Reached: true, Reason: ReasonReached}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			got, err := tr.Trace(ctx, netip.MustParseAddr(tc.addr))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

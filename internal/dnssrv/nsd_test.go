package dnssrv

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
)

const nsdPath = "/usr/sbin/nsd"

// freePort returns a port free for UDP and TCP on addr at the time of the call.
func freePort(t *testing.T, addr netip.Addr) uint16 {
	t.Helper()
	for range 20 {
		pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(addr, 0)))
		if err != nil {
			t.Fatal(err)
		}
		port := pc.LocalAddr().(*net.UDPAddr).AddrPort().Port()
		ln, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(netip.AddrPortFrom(addr, port)))
		pc.Close()
		if err == nil {
			ln.Close()
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

// startNSD runs nsd on the synthetic zones of domains 1..n under tld.
func startNSD(t *testing.T, tld string, n int) netip.AddrPort {
	t.Helper()
	if _, err := os.Stat(nsdPath); err != nil {
		t.Skipf("nsd not installed (%v): apt-get install nsd", err)
	}
	lo := netip.MustParseAddr("127.0.0.1")
	listenAddr := netip.AddrPortFrom(lo, freePort(t, lo))
	dir := t.TempDir()
	if err := WriteNSDConfig(dir, tld, n, listenAddr); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, nsdPath, "-d", "-c", filepath.Join(dir, "nsd.conf"))
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start nsd: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	// Ready when it answers the TLD's SOA. NSD loads 100,000 zones in about 11 s here.
	c := &dns.Client{Timeout: 200 * time.Millisecond}
	wait := 10*time.Second + time.Duration(n)*200*time.Microsecond
	err := WaitReady(context.Background(), tld, wait, done, func(ctx context.Context, m *dns.Msg) (*dns.Msg, error) {
		r, _, err := c.ExchangeContext(ctx, m, listenAddr.String())
		return r, err
	})
	if err != nil {
		t.Fatalf("nsd: %v\n%s", err, out.String())
	}
	return listenAddr
}

// TestNSDMatchesSynthetic serves the generated zones with NSD and checks that
// it gives the synthetic handler's answers.
func TestNSDMatchesSynthetic(t *testing.T) {
	const n = 200
	nsd := startNSD(t, "com", n)
	syn := listen(t, NewSyntheticServer("com", n))
	names := synNames("com.", n)
	names = append(names[:7], names[7:7+5*40]...) // specials + 40 domains
	names = append(names, "www.d200.com.", "d200.com.", "www.d193.com.", "ntp.d195.com.")
	for _, name := range names {
		for _, qt := range synTypes {
			want := query(t, syn, "udp", name, qt, 1232, false)
			got := query(t, nsd, "udp", name, qt, 1232, false)
			type view struct {
				Rcode  int
				AA     bool
				Answer []string
				SOA    []string
			}
			v := func(m *dns.Msg) view {
				var soa []dns.RR
				for _, rr := range m.Ns {
					if rr.Header().Rrtype == dns.TypeSOA {
						soa = append(soa, rr)
					}
				}
				return view{m.Rcode, m.Authoritative, rrStrings(m.Answer), rrStrings(soa)}
			}
			if diff := cmp.Diff(v(want), v(got)); diff != "" {
				t.Errorf("%s %s (-synthetic +nsd):\n%s", name, dns.TypeToString[qt], diff)
			}
		}
	}
}

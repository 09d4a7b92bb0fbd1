package httpprobe

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// listen serves h on a loopback port and returns the address and port.
func listen(t *testing.T, network, addr string, h http.Handler) (netip.Addr, uint16) {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Skipf("no %s loopback: %v", network, err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	ap := ln.Addr().(*net.TCPAddr).AddrPort()
	return ap.Addr().Unmap(), ap.Port()
}

func TestProbe(t *testing.T) {
	var mu sync.Mutex
	var gotUA, gotHost string
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		gotUA, gotHost = r.Header.Get("User-Agent"), r.Host
		mu.Unlock()
		w.Header().Set("Server", "lab-httpd")
		if r.Host == "old.example" {
			http.Redirect(w, r, "https://www.example/", http.StatusMovedPermanently)
			return
		}
		w.Write([]byte("hello"))
	})
	ok := 200
	moved := 301
	for _, network := range []string{"tcp4", "tcp6"} {
		addr := map[string]string{"tcp4": "127.0.0.1:0", "tcp6": "[::1]:0"}[network]
		ip, port := listen(t, network, addr, h)
		p := &Prober{UserAgent: "v6matrix/test (+https://example.org/crawler)", Port: port, Timeout: 2 * time.Second}
		tests := []struct {
			name string
			host string
			want Result
		}{
			{"ok", "www.example", Result{Status: StatusOK, Code: &ok, Server: "lab-httpd"}},
			{"redirect not followed", "old.example", Result{Status: StatusOK, Code: &moved, Server: "lab-httpd", Location: "https://www.example/"}},
		}
		for _, tt := range tests {
			t.Run(network+"/"+tt.name, func(t *testing.T) {
				got, err := p.Probe(context.Background(), ip, tt.host)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("result (-want +got):\n%s", diff)
				}
				mu.Lock()
				defer mu.Unlock()
				if gotUA != p.UserAgent || gotHost != tt.host {
					t.Errorf("server saw User-Agent %q Host %q", gotUA, gotHost)
				}
			})
		}
	}
}

func TestProbeFailures(t *testing.T) {
	// A closed port: the kernel answers RST.
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := uint16(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	// A server that accepts and never speaks HTTP.
	silent, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("SSH-2.0-not-http\r\n"))
			defer c.Close()
		}
	}()
	lo := netip.MustParseAddr("127.0.0.1")
	tests := []struct {
		name string
		port uint16
		want Status
	}{
		{"closed", closedPort, StatusRefused},
		{"not http", uint16(silent.Addr().(*net.TCPAddr).Port), StatusNotHTTP},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &Prober{UserAgent: "v6matrix/test", Port: tt.port, Timeout: time.Second}
			got, err := p.Probe(context.Background(), lo, "www.example")
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != tt.want || got.Code != nil {
				t.Errorf("got %+v, want status %s and no code", got, tt.want)
			}
		})
	}
	if _, err := (&Prober{}).Probe(context.Background(), lo, "x"); err == nil || err.Error() != "http probe: no User-Agent set" {
		t.Errorf("no User-Agent: err = %v", err)
	}
}

package main

import (
	"bufio"
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
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/miekg/dns"

	"github.com/v6matrix/v6matrix/internal/dnssrv"
)

// nsdPath is where Debian's nsd package installs the server.
const nsdPath = "/usr/sbin/nsd"

// benchServer is the server a bench crawls, running in its own process so that its
// CPU and memory are not counted as the crawler's.
type benchServer struct {
	addr netip.AddrPort
	cmd  *exec.Cmd
	halt func() error // asks the child to stop
	done chan error
	out  *bytes.Buffer // the child's stderr (and stdout for nsd), for error messages
}

// startBenchServer starts the server o.server asks for and waits until it answers.
func startBenchServer(ctx context.Context, o benchOptions, dir string) (*benchServer, error) {
	if o.server == "nsd" {
		return startNSD(ctx, o, dir)
	}
	return startSyntheticChild(ctx, o)
}

// startSyntheticChild runs `v6matrix bench --serve-synthetic 127.0.0.1:0` and reads the
// address it bound from its first line of output.
func startSyntheticChild(ctx context.Context, o benchOptions) (*benchServer, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("bench server: %w", err)
	}
	s := &benchServer{out: new(bytes.Buffer), done: make(chan error, 1)}
	s.cmd = exec.Command(exe, "bench", "--serve-synthetic", "127.0.0.1:0",
		"--domains", strconv.Itoa(o.domains), "--tld", o.tld)
	s.cmd.Stderr = s.out
	// The child serves until its stdin closes: it cannot outlive the bench.
	stdin, err := s.cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("bench server: %w", err)
	}
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("bench server: %w", err)
	}
	s.halt = stdin.Close
	s.cmd.WaitDelay = 3 * time.Second
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench server: %w", err)
	}
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			line <- sc.Text()
		}
		close(line)
		io.Copy(io.Discard, stdout)
		s.done <- s.cmd.Wait()
	}()
	select {
	case l, ok := <-line:
		if !ok {
			s.stop()
			return nil, fmt.Errorf("bench server exited before listening: %s", strings.TrimSpace(s.out.String()))
		}
		s.addr, err = netip.ParseAddrPort(strings.TrimPrefix(l, "listening "))
		if err != nil {
			s.stop()
			return nil, fmt.Errorf("bench server said %q: %w", l, err)
		}
	case <-time.After(10 * time.Second):
		s.stop()
		return nil, errors.New("bench server: no address after 10s")
	case <-ctx.Done():
		s.stop()
		return nil, ctx.Err()
	}
	return s, nil
}

// serveSynthetic is the child: it serves the synthetic data on o.serve, prints the
// bound address, and stops when stdin closes or ctx ends.
func serveSynthetic(ctx context.Context, o benchOptions, stdout io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	srv, err := dnssrv.Listen(ctx, o.serve, dnssrv.NewSyntheticServer(o.tld, o.domains))
	if err != nil {
		return err
	}
	defer srv.Close()
	fmt.Fprintf(stdout, "listening %s\n", srv.Addr())
	go func() {
		io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	<-ctx.Done()
	return nil
}

// startNSD writes the synthetic zones for NSD under dir and runs it on a free loopback
// port until stop.
func startNSD(ctx context.Context, o benchOptions, dir string) (*benchServer, error) {
	if _, err := os.Stat(nsdPath); err != nil {
		return nil, fmt.Errorf("--server nsd: %w (apt-get install nsd)", err)
	}
	port, err := freeLoopbackPort()
	if err != nil {
		return nil, err
	}
	s := &benchServer{addr: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port), out: new(bytes.Buffer), done: make(chan error, 1)}
	nsdDir := filepath.Join(dir, "nsd")
	if err := dnssrv.WriteNSDConfig(nsdDir, o.tld, o.domains, s.addr); err != nil {
		return nil, err
	}
	s.cmd = exec.Command(nsdPath, "-d", "-c", filepath.Join(nsdDir, "nsd.conf"))
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	// NSD must not outlive a bench killed with SIGKILL.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	s.halt = func() error { return s.cmd.Process.Signal(os.Interrupt) }
	s.cmd.WaitDelay = 5 * time.Second
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start nsd: %w", err)
	}
	go func() { s.done <- s.cmd.Wait() }()
	// NSD loads 100,000 zones in about 11 s on the 2-core machine.
	wait := 20*time.Second + time.Duration(o.domains)*300*time.Microsecond
	if err := s.waitReady(ctx, o.tld, wait); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// waitReady polls the server for the TLD's SOA until it answers.
func (s *benchServer) waitReady(ctx context.Context, tld string, wait time.Duration) error {
	c := &dns.Client{Timeout: 200 * time.Millisecond}
	err := dnssrv.WaitReady(ctx, tld, wait, s.done, func(ctx context.Context, m *dns.Msg) (*dns.Msg, error) {
		r, _, err := c.ExchangeContext(ctx, m, s.addr.String())
		return r, err
	})
	if err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("nsd on %s: %w: %s", s.addr, err, strings.TrimSpace(s.out.String()))
	}
	return err
}

// peakRSS returns the server's VmHWM in KiB while it runs, or 0.
func (s *benchServer) peakRSS() int64 {
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	return peakRSS("/proc/" + strconv.Itoa(s.cmd.Process.Pid) + "/status")
}

// stop ends the server process and waits for it (bounded by WaitDelay).
func (s *benchServer) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	s.halt()
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
}

// freeLoopbackPort returns a port free for UDP and TCP on 127.0.0.1 at the time of the
// call (the server binds it just after).
func freeLoopbackPort() (uint16, error) {
	lo := netip.MustParseAddr("127.0.0.1")
	for range 20 {
		pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(lo, 0)))
		if err != nil {
			return 0, fmt.Errorf("free port: %w", err)
		}
		port := pc.LocalAddr().(*net.UDPAddr).AddrPort().Port()
		ln, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(netip.AddrPortFrom(lo, port)))
		pc.Close()
		if err == nil {
			ln.Close()
			return port, nil
		}
	}
	return 0, errors.New("free port: none found in 20 tries")
}

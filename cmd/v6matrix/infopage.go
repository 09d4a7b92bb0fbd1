package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/v6matrix/v6matrix/internal/infopage"
	"github.com/v6matrix/v6matrix/internal/polite"
	"github.com/v6matrix/v6matrix/internal/probe/path"
)

// cmdInfoPage serves the crawler's info page with the opt-out form.
func cmdInfoPage(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("infopage", "[flags]", stdout)
	listen := fs.String("listen", ":80", "`address` to serve on (port 80 of the crawl's source addresses)")
	operator := fs.String("operator", "", "who runs the crawler (organisation)")
	contact := fs.String("contact", "", "abuse and opt-out contact `e-mail`")
	requests := fs.String("requests", "opt-out-requests.jsonl", "`file` opt-out requests are appended to, for review")
	pathPort := fs.Int("path-port", path.DefaultPort, "the crawl's path probe UDP port, shown on the page")
	var sources listFlag
	fs.Var(&sources, "source", "the crawl's source `address`, repeatable")
	var lf logFlags
	lf.register(fs)
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if *contact == "" {
		return usagef("--contact: give an address where people can reach the operator")
	}
	log, err := lf.logger(stderr)
	if err != nil {
		return err
	}
	pc := polite.DefaultConfig()
	h := infopage.New(infopage.Config{Operator: *operator, Contact: *contact, Sources: sources, Version: version,
		Ports: []string{"tcp/25", "tcp/80", "tcp/443", "udp/53", "udp/123", fmt.Sprintf("udp/%d (path)", *pathPort)},
		Rate: fmt.Sprintf("Slowly: at most %g probes per second in all, %v apart to one address and %v to one network, "+
			"and no more than %d ports of an address in any %v.", pc.Rate, pc.AddrGap, pc.NetGap, pc.MaxPortsPerWindow, pc.PortWindow),
		Requests: *requests, Logger: log})
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shut)
	}()
	log.Info("info page", "listen", ln.Addr().String(), "requests", *requests)
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

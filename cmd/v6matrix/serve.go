package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/v6matrix/v6matrix/internal/distrib"
	"github.com/v6matrix/v6matrix/internal/infopage"
	"github.com/v6matrix/v6matrix/internal/polite"
	"github.com/v6matrix/v6matrix/internal/probe/path"
	"github.com/v6matrix/v6matrix/internal/store"
	"github.com/v6matrix/v6matrix/internal/summary"
	"github.com/v6matrix/v6matrix/internal/web"
)

// cmdServe serves the website and the API from a store.
func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", "[flags]", stdout)
	db := fs.String("db", "v6matrix.db", "the database to serve: a SQLite `file` or a postgres:// URL")
	listen := fs.String("listen", "127.0.0.1:8080", "`address` to serve on")
	every := fs.Duration("summary-interval", 10*time.Minute, "how often the summary of a run still being crawled is rebuilt, and at least ten times its last rebuild apart (finished runs are summarised once)")
	infoOnly := fs.Bool("info-only", false, "serve only the crawler's info page with the opt-out form (for port 80 of the crawl host)")
	f := infoFlags(fs)
	var lf logFlags
	lf.register(fs)
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if *every < time.Minute {
		return usagef("--summary-interval %v: want at least 1m", *every)
	}
	log, err := lf.logger(stderr)
	if err != nil {
		return err
	}
	cfg := web.Config{Info: f.config(log), Logger: log, InfoOnly: *infoOnly}
	if !*infoOnly {
		// Read-write, to keep the runs' summaries; a database this user may not write
		// is served as it is (runs without a summary are then not shown).
		var st store.Store
		if _, err := os.Stat(*db); err != nil && !store.IsPostgres(*db) {
			return fmt.Errorf("database %s: %w (crawl first, or name the database with --db)", *db, err)
		}
		rw, err := store.Open(ctx, *db)
		if err != nil {
			ro, rerr := store.OpenReadOnly(ctx, *db)
			if rerr != nil {
				return err
			}
			log.Warn("database opened read-only: runs without a summary are not shown", "db", store.Name(*db), "err", err)
			st = ro
		} else {
			st = rw
			go summary.KeepCurrent(ctx, st, *every, log)
		}
		defer st.Close()
		cfg.Store = st
		if pg, ok := st.(*store.Postgres); ok {
			cfg.Jobs = func(ctx context.Context, run int64) ([]store.JobCount, error) { return distrib.Progress(ctx, pg, run) }
		}
	}
	return serveHTTP(ctx, cfg, *listen, stdout, log)
}

// serveHTTP listens, prints the URL and serves until ctx ends.
func serveHTTP(ctx context.Context, cfg web.Config, listen string, stdout io.Writer, log *slog.Logger) error {
	h, err := web.New(cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	srv := web.HTTPServer(h)
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shut)
	}()
	fmt.Fprintf(stdout, "serving on http://%s/ (Ctrl-C to stop)\n", ln.Addr())
	log.Info("serving", "listen", ln.Addr().String(), "info_only", cfg.InfoOnly)
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// infoFlagValues are the flags that describe the crawler on its info page.
type infoFlagValues struct {
	operator, contact, requests *string
	pathPort                    *int
	sources                     *listFlag
}

func infoFlags(fs *flag.FlagSet) infoFlagValues {
	var f infoFlagValues
	f.operator = fs.String("operator", "", "who runs the crawler (organisation), for the info page")
	f.contact = fs.String("contact", "", "abuse and opt-out contact `e-mail`, for the info page")
	f.requests = fs.String("requests", "opt-out-requests.jsonl", "`file` opt-out requests are appended to, for review")
	f.pathPort = fs.Int("path-port", path.DefaultPort, "the crawl's path probe UDP port, shown on the info page")
	f.sources = &listFlag{}
	fs.Var(f.sources, "source", "the crawl's source `address`, repeatable, shown on the info page")
	return f
}

func (f infoFlagValues) config(log *slog.Logger) infopage.Config {
	pc := polite.DefaultConfig()
	return infopage.Config{Operator: *f.operator, Contact: *f.contact, Sources: *f.sources, Version: version,
		Ports: []string{"tcp/25", "tcp/80", "tcp/443", "udp/53", "udp/123", fmt.Sprintf("udp/%d (path)", *f.pathPort)},
		Rate: fmt.Sprintf("Slowly: at most %g probes per second in all, %v apart to one address and %v to one network, "+
			"and no more than %d ports of an address in any %v.", pc.Rate, pc.AddrGap, pc.NetGap, pc.MaxPortsPerWindow, pc.PortWindow),
		Requests: *f.requests, Logger: log}
}

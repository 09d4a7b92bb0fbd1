package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/v6matrix/v6matrix/internal/geoip"
	"github.com/v6matrix/v6matrix/internal/lab"
)

// cmdDemo is the README's main job: bring the lab up, crawl its domains from the
// vantage with the default settings plus --allow-ranges, export the results, and serve
// them on the website until Ctrl-C.
func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo", "[flags]", stdout)
	out := fs.String("out", "demo-out", "`directory` for the database and the exported records")
	prefix := fs.String("prefix", lab.DefaultPrefix, "name prefix of the lab's namespaces")
	keep := fs.Bool("keep", false, "leave the lab up afterwards (explore it with v6matrix lab exec -- ...)")
	noServe := fs.Bool("no-serve", false, "end after the export instead of serving the website (for scripts)")
	listen := fs.String("listen", "127.0.0.1:8080", "`address` the website is served on")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	db, err := demoCrawl(ctx, *out, *prefix, *keep, stdout, stderr)
	if err != nil || *noServe {
		return err
	}
	fmt.Fprintln(stdout, "== serving the results")
	return cmdServe(ctx, []string{"--db", db, "--listen", *listen, "--contact", "abuse@v6matrix.lab", "--operator", "the v6matrix demo"}, stdout, stderr)
}

// demoCrawl brings the lab up, crawls it, exports, brings the lab down (unless keep)
// and returns the database's path.
func demoCrawl(ctx context.Context, out, prefix string, keep bool, stdout, stderr io.Writer) (string, error) {
	if os.Geteuid() != 0 {
		return "", errors.New("the demo builds network namespaces and needs root: run it with sudo (or make demo as root)")
	}
	abs, err := filepath.Abs(out)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return "", fmt.Errorf("demo: %w", err)
	}
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("demo: find own executable: %w", err)
	}

	// A lab left from an earlier demo or a crash is removed first: the demo starts clean.
	if err := lab.Down(ctx, prefix, lab.StateDir(prefix)); err != nil {
		return "", err
	}
	fmt.Fprintln(stdout, "== bringing the lab up")
	if err := labUp(ctx, []string{"--prefix", prefix}, stdout, stderr); err != nil {
		return "", err
	}
	l, err := lab.Attach(lab.Config{Prefix: prefix})
	if err != nil {
		return "", err
	}
	if !keep {
		defer func() {
			if err := l.Down(context.Background()); err != nil {
				fmt.Fprintf(stderr, "demo: lab down: %v\n", err)
			}
		}()
	}

	list := filepath.Join(abs, "lab-domains.csv")
	ca := filepath.Join(abs, "lab-ca.pem")
	db := filepath.Join(abs, "v6matrix.db")
	for _, f := range []string{db, db + "-wal", db + "-shm"} {
		os.Remove(f)
	}
	if err := os.WriteFile(list, l.Scenario().DomainList(), 0o644); err != nil {
		return "", err
	}
	pem := l.CAPEM()
	if pem == nil {
		return "", fmt.Errorf("demo: the lab CA is missing from %s", l.StateDir())
	}
	if err := os.WriteFile(ca, pem, 0o644); err != nil {
		return "", err
	}
	city, asn, err := geoip.WriteFixtures(abs)
	if err != nil {
		return "", err
	}
	var allow []string
	for _, p := range l.Scenario().AllowRanges {
		allow = append(allow, p.String())
	}
	argv := []string{exe, "crawl", "--db", db, "--resolver", l.ResolverAddr().String(),
		"--allow-ranges", strings.Join(allow, ","), "--tls-roots", ca, "--geoip-city", city, "--geoip-asn", asn,
		"--ehlo-name", "crawler.v6matrix.lab", list}
	fmt.Fprintf(stdout, "== crawling %d lab domains from the vantage (%s)\n   %s\n", len(l.Scenario().Domains), l.VantageNS(), strings.Join(argv[1:], " "))
	code, err := l.Exec(ctx, argv, nil, stdout, stderr)
	if err != nil {
		return "", err
	}
	if code != 0 {
		return "", fmt.Errorf("the crawl exited with status %d", code)
	}
	fmt.Fprintln(stdout, "== exporting")
	records := filepath.Join(abs, "records")
	if err := cmdExport(ctx, []string{"--db", db, "--out", records}, stdout, stderr); err != nil {
		return "", err
	}
	fmt.Fprintf(stdout, "\nDone. The records are in %s (one CSV per record type, domains.jsonl with everything);\n"+
		"the database is %s (v6matrix runs --db %s).\n", records, db, db)
	if keep {
		fmt.Fprintf(stdout, "The lab is still up: v6matrix lab exec -- dig www.alpha.uk AAAA; v6matrix lab down when done.\n")
	}
	return db, nil
}

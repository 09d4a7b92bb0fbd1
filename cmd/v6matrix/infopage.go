package main

import (
	"context"
	"io"

	"github.com/v6matrix/v6matrix/internal/web"
)

// cmdInfoPage serves the crawler's info page with the opt-out form: serve --info-only
// with a contact that must be given.
func cmdInfoPage(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("infopage", "[flags]", stdout)
	listen := fs.String("listen", ":80", "`address` to serve on (port 80 of the crawl's source addresses)")
	f := infoFlags(fs)
	var lf logFlags
	lf.register(fs)
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if *f.contact == "" {
		return usagef("--contact: give an address where people can reach the operator")
	}
	log, err := lf.logger(stderr)
	if err != nil {
		return err
	}
	return serveHTTP(ctx, web.Config{Info: f.config(log), Logger: log, InfoOnly: true}, *listen, stdout, log)
}

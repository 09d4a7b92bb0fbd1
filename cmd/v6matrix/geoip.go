package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/v6matrix/v6matrix/internal/geoip"
)

// cmdGeoIP is `v6matrix geoip update`: fetch and install the GeoIP databases.
func cmdGeoIP(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
		fmt.Fprintln(stdout, "usage: v6matrix geoip update [flags]\n\nFetches the GeoIP City and ASN databases and installs them where crawls find them.\nSee v6matrix geoip update --help for the flags.")
		return nil
	}
	if len(args) == 0 || args[0] != "update" {
		return usagef("want: v6matrix geoip update [flags] (see v6matrix geoip update --help)")
	}
	fs := newFlagSet("geoip update", "[flags]", stdout)
	var c geoip.UpdateConfig
	fs.StringVar(&c.Dir, "dir", geoip.DefaultDir(), "install the databases in `dir` (a crawl finds them there without --geoip-city/--geoip-asn)")
	fs.StringVar(&c.Source, "source", geoip.SourceDBIP, "where from: dbip (DB-IP Lite City and ASN, free, CC BY 4.0) or maxmind (GeoLite2, needs an account)")
	fs.StringVar(&c.BaseURL, "base-url", "", "download from this `URL` instead of the source's own (a mirror)")
	fs.StringVar(&c.AccountID, "maxmind-account", "", "MaxMind account `ID` (with --source maxmind)")
	fs.StringVar(&c.LicenseKey, "maxmind-license-key", "", "MaxMind licence `key` (default $MAXMIND_LICENSE_KEY, which keeps it out of the process list)")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up on a download after this `duration`")
	var lf logFlags
	lf.register(fs)
	if err := parseFlags(fs, args[1:], stderr); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if c.LicenseKey == "" {
		c.LicenseKey = os.Getenv("MAXMIND_LICENSE_KEY")
	}
	if *timeout <= 0 {
		return usagef("--timeout %s: want a positive duration", *timeout)
	}
	log, err := lf.logger(stderr)
	if err != nil {
		return err
	}
	c.Logger = log
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	got, err := geoip.Update(ctx, c)
	if err != nil {
		return err
	}
	for _, g := range got {
		state := "installed"
		if !g.Changed {
			state = "unchanged"
		}
		fmt.Fprintf(stdout, "%s\t%s\t%s (built %s) from %s\n", g.Kind, state, g.Path, g.Built.Format(time.DateOnly), g.URL)
	}
	return nil
}

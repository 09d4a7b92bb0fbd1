package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/v6matrix/v6matrix/internal/export"
	"github.com/v6matrix/v6matrix/internal/store"
)

func cmdExport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("export", "[flags]", stdout)
	dbPath := fs.String("db", "v6matrix.db", "database: a SQLite `file` or a postgres:// URL")
	runArg := fs.String("run", "latest", "run `id` to export, or latest")
	format := fs.String("format", "csv,jsonl", "formats, comma separated: csv (one file per record type), jsonl (domains.jsonl)")
	out := fs.String("out", "out", "output `directory` (record files in it from an earlier export are replaced or removed)")
	partial := fs.Bool("partial", false, "export a run that is not done (still crawling, interrupted or failed): its records are partial")
	vantage := fs.String("vantage", "", "export the measurements of this `vantage` of the run (default: the run's own; v6matrix runs lists a run's vantages, its own first)")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	formats := strings.Split(*format, ",")
	for _, f := range formats {
		if f != "csv" && f != "jsonl" {
			return usagef("--format %q: want csv, jsonl or csv,jsonl", *format)
		}
	}
	st, err := store.OpenReadOnly(ctx, *dbPath)
	if err != nil {
		return err
	}
	defer st.Close()
	run, err := pickRun(ctx, st, *runArg)
	if err != nil {
		return err
	}
	if run.State != store.RunDone {
		if !*partial {
			return fmt.Errorf("run %d is %s, not done: its records would be partial; finish it with v6matrix crawl --resume --run %d --db %s, or add --partial to export what it has so far",
				run.ID, run.State, run.ID, store.Name(*dbPath))
		}
		fmt.Fprintf(stderr, "v6matrix export: warning: run %d is %s, not done: these records are partial\n", run.ID, run.State)
	}
	paths, err := export.WriteVantage(ctx, st, run.ID, *vantage, *out, formats)
	if err != nil {
		return err
	}
	names := make([]string, len(paths))
	for i, p := range paths {
		names[i] = filepath.Base(p)
	}
	from := ""
	if *vantage != "" {
		from = " from vantage " + *vantage
	}
	fmt.Fprintf(stdout, "run %d%s exported to %s: %s\n", run.ID, from, *out, strings.Join(names, " "))
	return nil
}

// pickRun resolves a --run value: an id or "latest".
func pickRun(ctx context.Context, st store.Store, arg string) (store.Run, error) {
	if arg == "latest" {
		return st.LatestRun(ctx)
	}
	id, err := strconv.ParseInt(arg, 10, 64)
	if err != nil || id < 1 {
		return store.Run{}, usagef("--run %q: want a run id or latest", arg)
	}
	return st.GetRun(ctx, id)
}

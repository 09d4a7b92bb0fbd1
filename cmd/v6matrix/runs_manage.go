package main

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"text/tabwriter"

	"github.com/v6matrix/v6matrix/internal/result"
	"github.com/v6matrix/v6matrix/internal/store"
	"github.com/v6matrix/v6matrix/internal/summary"
)

// openExisting opens a database that must already exist (a SQLite file is not created).
func openExisting(ctx context.Context, db string) (store.Store, error) {
	if !store.IsPostgres(db) {
		if _, err := os.Stat(db); err != nil {
			return nil, fmt.Errorf("database %s: %w", db, err)
		}
	}
	return store.Open(ctx, db)
}

// cmdRunsDiff prints what changed between two runs: per role, how many domains gained
// or lost IPv6, and with --domains which ones.
func cmdRunsDiff(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("runs diff", "[flags] A B   (run ids, or latest)", stdout)
	dbPath := fs.String("db", "v6matrix.db", "database: a SQLite `file` or a postgres:// URL")
	list := fs.Bool("domains", false, "list the domains that gained or lost IPv6, role by role")
	format := fs.String("format", "text", "output `format`: text or csv")
	var lf logFlags
	lf.register(fs)
	if err := parseInterleaved(fs, args, stderr); err != nil {
		return err
	}
	switch {
	case fs.NArg() != 2:
		return usagef("want two runs A and B, got %d arguments (see v6matrix runs diff --help)", fs.NArg())
	case *format != "text" && *format != "csv":
		return usagef("--format %q: want text or csv", *format)
	}
	for _, a := range fs.Args() {
		if id, err := strconv.ParseInt(a, 10, 64); a != "latest" && (err != nil || id < 1) {
			return usagef("run %q: want a run id or latest", a)
		}
	}
	log, err := lf.logger(stderr)
	if err != nil {
		return err
	}
	st, err := openExisting(ctx, *dbPath)
	if err != nil {
		return err
	}
	defer st.Close()
	var ids [2]int64
	for i := range ids {
		r, err := pickRun(ctx, st, fs.Arg(i))
		if err != nil {
			return err
		}
		ids[i] = r.ID
	}
	c, err := summary.Diff(ctx, st, ids[0], ids[1], log)
	if err != nil {
		return err
	}
	if *format == "csv" {
		w := csv.NewWriter(stdout)
		if *list {
			w.Write([]string{"run_a", "run_b", "role", "change", "domain", "rank"})
		} else {
			w.Write([]string{"run_a", "run_b", "role", "gained", "lost"})
		}
		a, b := strconv.FormatInt(c.A, 10), strconv.FormatInt(c.B, 10)
		for i, role := range result.Roles {
			if !*list {
				w.Write([]string{a, b, string(role), strconv.Itoa(c.Gained[i]), strconv.Itoa(c.Lost[i])})
				continue
			}
			if err := eachChange(ctx, st, c, role, func(ch store.Change) {
				w.Write([]string{a, b, string(role), ch.Change, ch.Name, strconv.Itoa(ch.Rank)})
			}); err != nil {
				return err
			}
		}
		w.Flush()
		return w.Error()
	}
	fmt.Fprintf(stdout, "run %d -> run %d: %d domains in both, %d only in %d, %d only in %d\n", c.A, c.B, c.Common, c.OnlyA, c.A, c.OnlyB, c.B)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ROLE\tGAINED IPV6\tLOST IPV6")
	for i, role := range result.Roles {
		fmt.Fprintf(tw, "%s\t%d\t%d\n", role, c.Gained[i], c.Lost[i])
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if *list {
		for _, role := range result.Roles {
			if err := eachChange(ctx, st, c, role, func(ch store.Change) {
				fmt.Fprintf(stdout, "%s\t%s\t%d\t%s\n", role, ch.Change, ch.Rank, ch.Name)
			}); err != nil {
				return err
			}
		}
	}
	return nil
}

// eachChange calls fn for every domain that gained, then lost, IPv6 on a role, a page at
// a time.
func eachChange(ctx context.Context, st store.Store, c store.DiffCounts, role result.Role, fn func(store.Change)) error {
	for _, change := range []string{"gained", "lost"} {
		after := store.Cursor{}
		for {
			page, err := st.Changes(ctx, c.A, c.B, role, change, after, 1000)
			if err != nil {
				return err
			}
			for _, ch := range page {
				fn(ch)
			}
			if len(page) < 1000 {
				break
			}
			last := page[len(page)-1]
			after = store.Cursor{Rank: last.Rank, Name: last.Name}
		}
	}
	return nil
}

// cmdRunsDelete removes runs: those named, or all but the newest --keep finished ones.
func cmdRunsDelete(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("runs delete", "[flags] ID ...   or   --keep N", stdout)
	dbPath := fs.String("db", "v6matrix.db", "database: a SQLite `file` or a postgres:// URL")
	keep := fs.Int("keep", -1, "delete every finished run but the newest `N` (retention); runs in progress are left")
	force := fs.Bool("force", false, "also delete named runs that are not finished (loading, crawling or probing: a crawl that was killed, or one still running elsewhere)")
	dry := fs.Bool("dry-run", false, "print what would be deleted, delete nothing")
	if err := parseInterleaved(fs, args, stderr); err != nil {
		return err
	}
	switch {
	case *keep >= 0 && fs.NArg() > 0:
		return usagef("give run ids or --keep, not both")
	case *keep < 0 && fs.NArg() == 0:
		return usagef("want the runs to delete (ids) or --keep N (see v6matrix runs delete --help)")
	case *keep >= 0 && *force:
		return usagef("--force is for named runs; --keep never deletes a run in progress")
	}
	var ids []int64
	for _, a := range fs.Args() {
		id, err := strconv.ParseInt(a, 10, 64)
		if err != nil || id < 1 {
			return usagef("run %q: want a run id (a positive number)", a)
		}
		ids = append(ids, id)
	}
	st, err := openExisting(ctx, *dbPath)
	if err != nil {
		return err
	}
	defer st.Close()
	var victims []store.Run
	if *keep >= 0 {
		runs, err := st.ListRuns(ctx)
		if err != nil {
			return err
		}
		finished := 0
		for _, r := range slices.Backward(runs) {
			if active(r.State) {
				continue
			}
			if finished++; finished > *keep {
				victims = append(victims, r)
			}
		}
	} else {
		for _, id := range ids {
			r, err := st.GetRun(ctx, id)
			if err != nil {
				return err
			}
			if active(r.State) && !*force {
				return fmt.Errorf("run %d is %s: a crawl may still be writing it; stop that crawl, or give --force if it was killed", id, r.State)
			}
			victims = append(victims, r)
		}
	}
	for _, r := range victims {
		if *dry {
			fmt.Fprintf(stdout, "would delete run %d (%s, %s)\n", r.ID, r.State, r.ListName)
			continue
		}
		if err := st.DeleteRun(ctx, r.ID); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "deleted run %d (%s, %s)\n", r.ID, r.State, r.ListName)
	}
	return nil
}

// active says whether a run may still be written by a crawl.
func active(s store.RunState) bool {
	return s == store.RunLoading || s == store.RunCrawling || s == store.RunProbing
}

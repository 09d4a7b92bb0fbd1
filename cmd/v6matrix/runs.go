package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/v6matrix/v6matrix/internal/result"
	"github.com/v6matrix/v6matrix/internal/store"
	"github.com/v6matrix/v6matrix/internal/summary"
)

func cmdRuns(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "copy":
			return cmdRunsCopy(ctx, args[1:], stdout, stderr)
		case "diff":
			return cmdRunsDiff(ctx, args[1:], stdout, stderr)
		case "delete":
			return cmdRunsDelete(ctx, args[1:], stdout, stderr)
		}
	}
	fs := newFlagSet("runs", "[flags]\n       v6matrix runs copy --from DB --to DB [--run ID]\n       v6matrix runs diff [--domains] A B\n       v6matrix runs delete ID ... | --keep N", stdout)
	dbPath := fs.String("db", "v6matrix.db", "database: a SQLite `file` or a postgres:// URL")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	st, err := store.OpenReadOnly(ctx, *dbPath)
	if err != nil {
		return err
	}
	defer st.Close()
	runs, err := st.ListRuns(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tSTARTED\tSTATE\tLIST\tVANTAGE\tDOMAINS\tDONE\tOK\tADDRESSES")
	for _, r := range runs {
		c, err := st.Counts(ctx, r.ID)
		if err != nil {
			return err
		}
		vs, err := st.Vantages(ctx, r.ID)
		if err != nil {
			return err
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\n", r.ID, r.Started.Local().Format(time.DateTime), r.State,
			r.ListName, strings.Join(vs, ","), c.Total, c.Done, c.ByStatus[result.StatusOK], c.Addresses)
	}
	return tw.Flush()
}

// cmdRunsCopy copies a run between databases (SQLite files or PostgreSQL URLs) and
// summarises the copy.
func cmdRunsCopy(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("runs copy", "--from DB --to DB [--run ID]", stdout)
	from := fs.String("from", "", "the `database` to copy from: a SQLite file or a postgres:// URL")
	to := fs.String("to", "", "the `database` to copy to (created or migrated when needed)")
	runArg := fs.String("run", "latest", "run `id` to copy, or latest")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return usagef("unexpected argument %q", fs.Arg(0))
	case *from == "" || *to == "":
		return usagef("runs copy needs --from and --to")
	case *from == *to:
		return usagef("--from and --to name the same database %s", store.Name(*from))
	}
	src, err := openExisting(ctx, *from)
	if err != nil {
		return err
	}
	defer src.Close()
	run, err := pickRun(ctx, src, *runArg)
	if err != nil {
		return err
	}
	dst, err := store.Open(ctx, *to)
	if err != nil {
		return err
	}
	defer dst.Close()
	id, err := store.Copy(ctx, src, dst, run.ID)
	if err != nil {
		return err
	}
	if err := summary.Build(ctx, dst, id, nil); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "run %d of %s copied to %s as run %d\n", run.ID, store.Name(*from), store.Name(*to), id)
	return nil
}

package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/v6matrix/v6matrix/internal/result"
	"github.com/v6matrix/v6matrix/internal/store"
)

func cmdRuns(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("runs", "[flags]", stdout)
	dbPath := fs.String("db", "v6matrix.db", "SQLite database file")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	st, err := store.OpenSQLiteReadOnly(ctx, *dbPath)
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
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\n", r.ID, r.Started.Local().Format(time.DateTime), r.State,
			r.ListName, r.Vantage, c.Total, c.Done, c.ByStatus[result.StatusOK], c.Addresses)
	}
	return tw.Flush()
}

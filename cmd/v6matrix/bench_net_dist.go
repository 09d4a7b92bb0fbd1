package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/v6matrix/v6matrix/internal/synthnet"
)

// printDist prints the distributed run's ratio to the single-process crawl, its queue
// and store figures and the comparison of the exports.
func printDist(w io.Writer, rep synthnet.Report, dist, single float64) {
	d := rep.Dist
	fmt.Fprintf(w, "distributed: %d workers, PostgreSQL CPU %.1fs (%.0fµs/domain)\n", d.Workers, d.PGCPU.Seconds(),
		float64(d.PGCPU.Microseconds())/float64(rep.Data.Domains))
	if dist > 0 && single > 0 {
		fmt.Fprintf(w, "distributed / single-process: %.2f× domains/s\n", dist/single)
	}
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000) }
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "job kind\tjobs\tattempts\twait avg\twait max\trun avg\trun max\tbusy\tspan\tjobs/s\t")
	for _, j := range d.Jobs {
		rate := 0.0
		if j.Span > 0 {
			rate = float64(j.Count) / j.Span.Seconds()
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\t%s\t%.1fs\t%.1fs\t%.0f\t\n", j.Kind, j.Count, j.Attempts,
			ms(j.WaitAvg), ms(j.WaitMax), ms(j.RunAvg), ms(j.RunMax), j.Busy.Seconds(), j.Span.Seconds(), rate)
	}
	tw.Flush()
	fmt.Fprintf(w, "PostgreSQL: %d commits, %d rollbacks, %.1fs in statements, %.1fs idle in transactions, database %d MiB\n",
		d.Commits, d.Rollbacks, d.Active.Seconds(), d.IdleInTx.Seconds(), d.SizeBytes>>20)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "table\tinserted\tupdated\tlive\tsize\t")
	for _, t := range d.Tables {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.1f MiB\t\n", t.Name, t.Inserted, t.Updated, t.Live, float64(t.SizeBytes)/(1<<20))
	}
	tw.Flush()
	fmt.Fprintln(w, "statements by time (pg_stat_statements):")
	for _, s := range d.Statements {
		q := s.Query
		if len(q) > 110 {
			q = q[:110] + "…"
		}
		fmt.Fprintf(w, "  %7.1fs %8d calls %9d rows  %s\n", s.Total.Seconds(), s.Calls, s.Rows, q)
	}
	switch {
	case d.Compared == 0:
		fmt.Fprintln(w, "exports not compared (no single-process crawl)")
	case len(d.ExportDiffs) == 0:
		fmt.Fprintf(w, "exports identical: %d CSV rows (ping RTTs and loss, NTP offsets left out)\n", d.Compared)
	default:
		fmt.Fprintf(w, "EXPORTS DIFFER (%d CSV rows compared):\n", d.Compared)
		for _, l := range d.ExportDiffs {
			fmt.Fprintf(w, "  %s\n", l)
		}
	}
}

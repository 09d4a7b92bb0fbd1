package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/v6matrix/v6matrix/internal/store"
	"github.com/v6matrix/v6matrix/internal/store/pgtest"
	"github.com/v6matrix/v6matrix/internal/store/storetest"
	"github.com/v6matrix/v6matrix/internal/summary"
	"github.com/v6matrix/v6matrix/internal/synthrun"
)

// TestRunsCopyToPostgres copies a finished synthetic run from a SQLite file into
// PostgreSQL with `runs copy`; `export` and `runs` of either database then agree, and
// the copy has the same domain documents. (store.TestCopy checks the tables the
// exports do not show: targets, name server pairs.)
func TestRunsCopyToPostgres(t *testing.T) {
	dsn := pgtest.DSN(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "src.db")
	ctx := context.Background()
	st, err := store.OpenSQLite(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	id, err := synthrun.Fill(ctx, st, synthrun.Config{Domains: 700, Seed: 3})
	if err == nil {
		err = summary.Build(ctx, st, id, nil)
	}
	st.Close()
	if err != nil {
		t.Fatal(err)
	}

	code, out, errs := cliRun(t, "runs", "copy", "--from", db, "--to", dsn)
	if code != 0 || !strings.Contains(out, "copied to postgres:///") || !strings.HasSuffix(out, "as run 1\n") {
		t.Fatalf("runs copy: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	outs := []string{filepath.Join(dir, "out-file"), filepath.Join(dir, "out-postgres")}
	for i, d := range []string{db, dsn} {
		if code, _, errs := cliRun(t, "export", "--db", d, "--out", outs[i]); code != 0 {
			t.Fatalf("export --db %s: exit %d: %s", store.Name(d), code, errs)
		}
	}
	storetest.SameFiles(t, outs[0], outs[1])
	c1, l1, _ := cliRun(t, "runs", "--db", db)
	c2, l2, _ := cliRun(t, "runs", "--db", dsn)
	if c1 != 0 || c2 != 0 || l1 != l2 {
		t.Errorf("runs of the file:\n%s\nruns of PostgreSQL:\n%s", l1, l2)
	}

	pst, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pst.Close()
	if at, err := pst.Summarised(ctx, 1); err != nil || at.IsZero() {
		t.Errorf("the copy is not summarised: %v, %v", at, err)
	}
	sst, err := store.OpenSQLiteReadOnly(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer sst.Close()
	storetest.SameDocs(t, sst, id, pst, 1) // the domain pages read these

	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"runs", "copy", "--from", db}, "runs copy needs --from and --to"},
		{[]string{"runs", "copy", "--from", db, "--to", db}, "--from and --to name the same database"},
		{[]string{"runs", "copy", "--from", filepath.Join(dir, "none.db"), "--to", dsn}, "none.db: no such file"},
	} {
		code, _, errs := cliRun(t, tt.args...)
		if code == 0 || !strings.Contains(errs, tt.want) {
			t.Errorf("%v: exit %d, stderr %q; want an error with %q", tt.args, code, errs, tt.want)
		}
	}
}

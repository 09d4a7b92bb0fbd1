package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/v6matrix/v6matrix/internal/domains"
	"github.com/v6matrix/v6matrix/internal/polite"
	"github.com/v6matrix/v6matrix/internal/store"
)

// hostRangesErr returns the error a crawl with these --allow-ranges gets in the host's
// network namespace, where go test runs (polite.TestCheckAllowRanges has its wording).
func hostRangesErr(t *testing.T, ranges ...string) string {
	t.Helper()
	var ps []netip.Prefix
	for _, r := range ranges {
		ps = append(ps, netip.MustParsePrefix(r))
	}
	err := polite.CheckAllowRanges(ps)
	if err == nil {
		t.Fatal("the test runs in a network namespace of its own: --allow-ranges would be taken here")
	}
	return err.Error()
}

// cliRun calls dispatch in-process, bounded by 20 s, and returns its exit code and streams.
func cliRun(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	code = dispatch(ctx, args, &out, &errb)
	if ctx.Err() != nil {
		t.Fatalf("v6matrix %s: still running after 20 s", strings.Join(args, " "))
	}
	return code, out.String(), errb.String()
}

// cliFiles writes the inputs the CLI cases refer to into dir.
type cliFiles struct {
	list, badList, doneDB, emptyDB, damagedDB, missing, interruptedDB string
}

func writeCLIFiles(t *testing.T, dir string) cliFiles {
	t.Helper()
	f := cliFiles{
		list:      filepath.Join(dir, "list.csv"),
		badList:   filepath.Join(dir, "bad.csv"),
		doneDB:    filepath.Join(dir, "done.db"),
		emptyDB:   filepath.Join(dir, "empty.db"),
		damagedDB: filepath.Join(dir, "damaged.db"),
		missing:   filepath.Join(dir, "missing.csv"),

		interruptedDB: filepath.Join(dir, "interrupted.db"),
	}
	write := func(path, text string) {
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(f.list, "1,d1.com\n2,d2.com\n")
	write(f.badList, "0,a.com\n# a comment\n2\n\n3,not a domain\n")
	write(f.damagedDB, strings.Repeat("this is not a database\x00\xff", 200))
	ctx := context.Background()
	for _, path := range []string{f.doneDB, f.emptyDB, f.interruptedDB} {
		st, err := store.OpenSQLite(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		state := map[string]store.RunState{f.doneDB: store.RunDone, f.interruptedDB: store.RunInterrupted}[path]
		if state != "" {
			if _, err := st.CreateRun(ctx, store.Run{Started: time.Now(), ListName: "list.csv", Options: "{}", Vantage: "test", State: state}); err != nil {
				t.Fatal(err)
			}
		}
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// TestCLIErrors runs v6matrix with bad flags and arguments and checks the exact message
// and exit code (2 for a usage error, 1 for a failure).
func TestCLIErrors(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir) // a case that forgot --db must not leave v6matrix.db in the source tree
	f := writeCLIFiles(t, dir)
	db := filepath.Join(dir, "cli.db")
	// The resolver is a closed loopback port: nothing leaves the machine even if a case
	// went on to crawl.
	crawl := func(args ...string) []string {
		return append([]string{"crawl", "--db", db, "--resolver", "127.0.0.1:9", "--quiet"}, args...)
	}
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string // the whole of stderr, or its first line when usage follows
	}{
		{"unknown command", []string{"crawll"}, 2, `v6matrix: unknown command "crawll"`},
		{"unknown flag", crawl("--bogus", f.list), 2,
			"v6matrix crawl: flag provided but not defined: -bogus (see v6matrix crawl --help)\n"},
		{"flag without value", crawl("--top"), 2,
			"v6matrix crawl: flag needs an argument: -top (see v6matrix crawl --help)\n"},
		{"non-numeric flag", crawl("--top", "ten", f.list), 2,
			"v6matrix crawl: invalid value \"ten\" for flag -top: parse error (see v6matrix crawl --help)\n"},
		{"crawl without LIST", crawl(), 2,
			"v6matrix crawl: want exactly one LIST argument, got 0 (see v6matrix crawl --help)\n"},
		{"crawl with two LISTs", crawl(f.list, f.list), 2,
			"v6matrix crawl: want exactly one LIST argument, got 2 (see v6matrix crawl --help)\n"},
		// Flags may follow LIST: this one is parsed (and rejected), not taken as a LIST.
		{"flag after LIST", crawl(f.list, "--top", "-1"), 2, "v6matrix crawl: --top -1: want 0 (all) or more\n"},
		{"two LISTs around a flag", crawl(f.list, "--top", "3", f.list), 2,
			"v6matrix crawl: want exactly one LIST argument, got 2 (see v6matrix crawl --help)\n"},
		{"run without resume", crawl("--run", "3", f.list), 2, "v6matrix crawl: --run needs --resume\n"},
		{"resume run -3", []string{"crawl", "--db", f.interruptedDB, "--resume", "--quiet", "--resolver", "127.0.0.1:9", "--run", "-3"}, 2,
			"v6matrix crawl: --run -3: want a run id, 1 or more (without --run, --resume takes the latest run)\n"},
		{"resume run 0", []string{"crawl", "--db", f.interruptedDB, "--resume", "--quiet", "--resolver", "127.0.0.1:9", "--run", "0"}, 2,
			"v6matrix crawl: --run 0: want a run id, 1 or more (without --run, --resume takes the latest run)\n"},
		{"resume with a LIST", crawl("--resume", f.list), 2,
			"v6matrix crawl: --resume takes no LIST: the run's own list is used\n"},
		{"concurrency 0", crawl("--concurrency", "0", f.list), 2, "v6matrix crawl: --concurrency 0: want 1 to 10000\n"},
		{"top -1", crawl("--top", "-1", f.list), 2, "v6matrix crawl: --top -1: want 0 (all) or more\n"},
		{"timeout 0s", crawl("--timeout", "0s", f.list), 2,
			"v6matrix crawl: --timeout 0s: want a positive duration such as 2s\n"},
		{"retries 11", crawl("--retries", "11", f.list), 2, "v6matrix crawl: --retries 11: want 0 to 10\n"},
		{"distributed into SQLite", crawl("--distributed", f.list), 2,
			"v6matrix crawl: --distributed needs --db postgres://... (the workers share the database and its job queue), got " + db + "\n"},
		{"worker without a database", []string{"worker", "--vantage", "ams"}, 2,
			"v6matrix worker: --db: want the distributed runs' postgres:// URL, got \"\"\n"},
		{"worker with a run's own setting", []string{"worker", "--db", "postgres:///x", "--vantage", "ams", "--top", "3"}, 2,
			"v6matrix worker: flag provided but not defined: -top (see v6matrix worker --help)\n"},
		{"worker vantage", []string{"worker", "--db", "postgres:///x", "--vantage", "Ams"}, 2,
			"v6matrix worker: --vantage: vantage \"Ams\": want lower-case letters and digits, with single - or _ between them (at most 100 characters)\n"},
		{"bench-net domains 0", []string{"bench-net", "--domains", "0"}, 2, "v6matrix bench-net: --domains 0: want 1 to 10000000\n"},
		{"bench-net hot share", []string{"bench-net", "--hot-share", "0.5"}, 2, "v6matrix bench-net: --hot-share 0.5: want 0 to 0.2\n"},
		{"bench-net distributed", []string{"bench-net", "--distributed", "-1"}, 2, "v6matrix bench-net: --distributed -1, --shard 0: want 0 to 64 workers and a shard of 0 or more\n"},
		{"bench-net argument", []string{"bench-net", "list.csv", "--rate", "inf"}, 2,
			"v6matrix bench-net: takes no arguments; crawl flags go after --, got [\"list.csv\" \"--rate\" \"inf\"]\n"},
		{"tld with a space", crawl("--tld", "u k", f.list), 2,
			"v6matrix crawl: --tld \"u k\": want top-level labels such as uk,net\n"},
		{"resolver nonsense", []string{"crawl", "--db", db, "--quiet", "--resolver", "nonsense", f.list}, 2,
			"v6matrix crawl: --resolver: invalid resolver \"nonsense\": want address:port, e.g. 127.0.0.1:53 or [::1]:53\n"},
		{"allow-ranges /33", crawl("--allow-ranges", "10.0.0.0/33", f.list), 2,
			"v6matrix crawl: --allow-ranges \"10.0.0.0/33\": want a CIDR network such as 192.0.2.0/24 or 2001:db8::/32\n"},
		{"log-format xml", crawl("--log-format", "xml", f.list), 2,
			"v6matrix crawl: --log-format \"xml\": want text or json\n"},
		{"log-level loud", crawl("--log-level", "loud", f.list), 2,
			"v6matrix crawl: --log-level \"loud\": want debug, info, warn or error\n"},
		{"probes none with others", crawl("--probes", "none,ping", f.list), 2,
			"v6matrix crawl: --probes \"none,ping\": none cannot be combined with other probes; give none alone (DNS only) or a list of probes\n"},
		{"tls roots missing", crawl("--tls-roots", f.missing, f.list), 1,
			"v6matrix crawl: --tls-roots: open " + f.missing + ": no such file or directory\n"},
		{"prefix table missing", crawl("--prefix-table", f.missing, f.list), 1,
			"v6matrix crawl: --prefix-table: open " + f.missing + ": no such file or directory\n"},
		{"exclude missing", crawl("--exclude", f.missing, f.list), 1,
			"v6matrix crawl: --exclude: open " + f.missing + ": no such file or directory\n"},
		{"dead resolver", crawl(f.list), 1,
			"v6matrix crawl: resolvers 127.0.0.1:9: no resolver answered a query for the root NS set: check --resolver\n"},
		{"ns-check-rate 0", crawl("--ns-check-rate", "0", f.list), 2,
			"v6matrix crawl: --ns-check-rate 0: want a positive number of queries per second, or inf\n"},
		{"ns-check-workers 0", crawl("--ns-check-workers", "0", f.list), 2,
			"v6matrix crawl: --ns-check-workers 0: want 1 to 100000\n"},
		{"allow-ranges in the host's namespace", crawl("--allow-ranges", "198.18.0.0/15,2001:db8::/32", f.list), 2,
			"v6matrix crawl: " + hostRangesErr(t, "198.18.0.0/15", "2001:db8::/32") + "\n"},
		{"metrics-linger without metrics-listen", crawl("--metrics-linger", "5s", f.list), 2,
			"v6matrix crawl: --metrics-linger 5s: want a duration of 0 or more, with --metrics-listen\n"},
		{"allow-ranges garbage", crawl("--allow-ranges", "garbage", f.list), 2,
			"v6matrix crawl: --allow-ranges \"garbage\": want a CIDR network such as 192.0.2.0/24 or 2001:db8::/32\n"},
		{"resume a mistyped database", []string{"crawl", "--db", db, "--resume", "--quiet"}, 1,
			"v6matrix crawl: --resume: database " + db + ": no such database (give --db the file the interrupted crawl wrote)\n"},
		{"resume with another ping count", []string{"crawl", "--db", f.interruptedDB, "--resume", "--quiet", "--resolver", "127.0.0.1:9", "--ping-count", "3"}, 2,
			"v6matrix crawl: --ping-count 3: cannot change when resuming run 1, which was started with \"5\" (results measured so far used it); start a new crawl to use another\n"},
		{"resume with another probe set", []string{"crawl", "--db", f.interruptedDB, "--resume", "--quiet", "--resolver", "127.0.0.1:9", "--probes", "ping"}, 2,
			"v6matrix crawl: --probes ping: cannot change when resuming run 1, which was started with \"none\" (results measured so far used it); start a new crawl to use another\n"},
		{"resume with another opt-out file", []string{"crawl", "--db", f.interruptedDB, "--resume", "--quiet", "--resolver", "127.0.0.1:9", "--exclude", f.list}, 2,
			"v6matrix crawl: --exclude " + f.list + ": cannot change when resuming run 1, which was started with \"\" (results measured so far used it); start a new crawl to use another\n"},
		{"resume from another vantage", []string{"crawl", "--db", f.interruptedDB, "--resume", "--quiet", "--resolver", "127.0.0.1:9", "--vantage", "elsewhere"}, 1,
			"v6matrix crawl: run 1 (interrupted, 0 of 0 domains done): DNS stage not finished: finish it from its own vantage \"test\" first (v6matrix crawl --resume --run 1 there)\n"},
		{"export from an unknown vantage", []string{"export", "--db", f.doneDB, "--vantage", "nowhere", "--out", filepath.Join(dir, "out")}, 1,
			"v6matrix export: run 1 has no vantage \"nowhere\": its vantages are \"test\"\n"},
		{"export an interrupted run", []string{"export", "--db", f.interruptedDB, "--out", filepath.Join(dir, "out")}, 1,
			"v6matrix export: run 1 is interrupted, not done: its records would be partial; finish it with v6matrix crawl --resume --run 1 --db " +
				f.interruptedDB + ", or add --partial to export what it has so far\n"},
		{"runs of a mistyped database", []string{"runs", "--db", db}, 1,
			"v6matrix runs: database " + db + ": no such database (give --db the file a crawl wrote)\n"},
		{"export of a mistyped database", []string{"export", "--db", db}, 1,
			"v6matrix export: database " + db + ": no such database (give --db the file a crawl wrote)\n"},
		{"unknown probe", crawl("--probes", "ping,sonar", f.list), 2,
			"v6matrix crawl: --probes \"ping,sonar\": unknown probe \"sonar\"; want some of ptr,geo,ping,tcp25,tcp80,tcp443,tls443,starttls25,dns53,ntp123,path,http80, or none\n"},
		{"path port 0", crawl("--path-port", "0", f.list), 2, "v6matrix crawl: --path-port 0: want a UDP port, 1 to 65535\n"},
		{"path gap limit -1", crawl("--path-gap-limit", "-1", f.list), 2, "v6matrix crawl: --path-gap-limit -1: want 0 (off) to 255\n"},
		{"path wait 1ms", crawl("--path-wait", "1ms", f.list), 2, "v6matrix crawl: --path-wait 1ms: want 10ms to 1m\n"},
		{"ping count 0", crawl("--ping-count", "0", f.list), 2, "v6matrix crawl: --ping-count 0: want 1 to 100\n"},
		{"list does not exist", crawl(f.missing), 1,
			"v6matrix crawl: list: open " + f.missing + ": no such file or directory\n"},
		{"resume a done run", []string{"crawl", "--db", f.doneDB, "--resume", "--quiet"}, 1,
			"v6matrix crawl: run 1 is already done: nothing to resume\n"},
		{"resume in an empty database", []string{"crawl", "--db", f.emptyDB, "--resume", "--quiet"}, 1,
			"v6matrix crawl: no run in " + f.emptyDB + ": not found\n"},
		{"export format xml", []string{"export", "--db", f.emptyDB, "--format", "xml"}, 2,
			"v6matrix export: --format \"xml\": want csv, jsonl or csv,jsonl\n"},
		{"export run abc", []string{"export", "--db", f.emptyDB, "--run", "abc"}, 2,
			"v6matrix export: --run \"abc\": want a run id or latest\n"},
		{"export run 99 of an empty database", []string{"export", "--db", f.emptyDB, "--run", "99"}, 1,
			"v6matrix export: run 99 in " + f.emptyDB + ": not found\n"},
		{"export latest of an empty database", []string{"export", "--db", f.emptyDB}, 1,
			"v6matrix export: no run in " + f.emptyDB + ": not found\n"},
		{"export with an argument", []string{"export", "--db", f.emptyDB, "out"}, 2,
			"v6matrix export: unexpected argument \"out\"\n"},
		{"runs of a damaged database", []string{"runs", "--db", f.damagedDB}, 1,
			"v6matrix runs: database " + f.damagedDB + ": not a usable SQLite database (file is not a database (26))\n"},
		{"runs of a directory", []string{"runs", "--db", dir}, 1, "v6matrix runs: database " + dir + ": is a directory\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := cliRun(t, tc.args...)
			got := stderr
			if first, _, ok := strings.Cut(stderr, "\n\n"); ok && !strings.HasSuffix(tc.stderr, "\n") {
				got = first // the usage that follows is checked elsewhere
			}
			if code != tc.code || got != tc.stderr || stdout != "" {
				t.Errorf("v6matrix %s:\nexit %d, stderr %q, stdout %q\nwant exit %d, stderr %q, no stdout",
					strings.Join(tc.args, " "), code, got, stdout, tc.code, tc.stderr)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "v6matrix.db")); err == nil {
		t.Error("a case created v6matrix.db in the working directory")
	}
	// Every case failed before the database was needed: none may have created it.
	if _, err := os.Stat(db); err == nil {
		t.Errorf("a rejected command created the database %s", db)
	}
}

// TestCLIInvalidList crawls a list whose every line is invalid: each line is reported
// as file:line with its reason, and the error counts them.
func TestCLIInvalidList(t *testing.T) {
	dir := t.TempDir()
	f := writeCLIFiles(t, dir)
	db := filepath.Join(dir, "cli.db")
	resolver, _ := syntheticServer(t, 1) // the resolvers are checked before the list loads
	code, stdout, stderr := cliRun(t, "crawl", "--db", db, "--resolver", resolver, "--quiet", "--log-format", "json", f.badList)
	lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
	last := lines[len(lines)-1]
	if want := "v6matrix crawl: bad.csv: the list holds no valid domain (3 lines skipped, 0 outside the selection)"; code != 1 || last != want || stdout != "" {
		t.Errorf("exit %d, last line %q, stdout %q; want exit 1, %q, no stdout", code, last, stdout, want)
	}
	type skip struct{ Level, Msg, Where, Reason string }
	var got []skip
	for _, l := range lines[:len(lines)-1] {
		var s skip
		if err := json.Unmarshal([]byte(l), &s); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		got = append(got, s)
	}
	want := []skip{
		{"WARN", "skipped list line", "bad.csv:1", `invalid rank "0": want a positive integer`},
		{"WARN", "skipped list line", "bad.csv:3", "want at least 2 columns, got 1"},
		{"WARN", "skipped list line", "bad.csv:5", `invalid domain "not a domain": a single label is not a domain`},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("skipped-line warnings (-want +got):\n%s", diff)
	}
	st, err := store.OpenSQLite(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r, err := st.LatestRun(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if r.State != store.RunFailed {
		t.Errorf("run state %q, want %q", r.State, store.RunFailed)
	}
}

// TestCLIHelp checks that every command's --help prints its usage and exits 0, and
// that v6matrix without a command prints the list of commands and exits 2.
func TestCLIHelp(t *testing.T) {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		for _, h := range []string{"--help", "-h"} {
			t.Run(n+h, func(t *testing.T) {
				code, stdout, stderr := cliRun(t, n, h)
				if code != 0 || !strings.HasPrefix(stdout, "usage: v6matrix "+n) || stderr != "" {
					t.Errorf("v6matrix %s %s: exit %d, stdout %q, stderr %q; want exit 0 and the usage on stdout", n, h, code, stdout, stderr)
				}
			})
		}
	}
	for _, tc := range []struct {
		args []string
		code int
	}{{nil, 2}, {[]string{"--help"}, 0}, {[]string{"help"}, 0}} {
		t.Run(strings.Join(append([]string{"v6matrix"}, tc.args...), " "), func(t *testing.T) {
			// Asked for, the usage is the output (stdout); without a command it is an error.
			code, stdout, stderr := cliRun(t, tc.args...)
			usage, other := stdout, stderr
			if tc.code != 0 {
				usage, other = stderr, stdout
			}
			if code != tc.code || other != "" || !strings.HasPrefix(usage, "usage: v6matrix <command> [flags]\n") {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit %d and the usage on %s", code, stdout, stderr, tc.code,
					map[bool]string{true: "stdout", false: "stderr"}[tc.code == 0])
			}
			for _, n := range names {
				if !strings.Contains(usage, "\n  "+n+" ") {
					t.Errorf("usage does not list %q:\n%s", n, usage)
				}
			}
		})
	}
}

// TestReadOnlyDatabase reads a database in a directory the user may not write, as a
// user who may not write the file either: runs and export must work (they said "not a
// usable SQLite database"). Needs root to switch to the user nobody.
func TestReadOnlyDatabase(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run v6matrix as another user")
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("needs setpriv (util-linux)")
	}
	bin := v6matrixBinary(t)
	top, err := os.MkdirTemp("", "v6matrix-ro-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(top) })
	dir := filepath.Join(top, "db")
	out := filepath.Join(top, "out")
	for _, d := range []string{dir, out} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	db := filepath.Join(dir, "ro.db")
	ctx := context.Background()
	st, err := store.OpenSQLite(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	run, err := st.CreateRun(ctx, store.Run{Started: time.Now(), ListName: "l", Options: "{}", Vantage: "test", State: store.RunDone})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.AddDomains(ctx, run, []domains.Entry{{Rank: 1, Name: "a.example", TLD: "example"}}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	// nobody may enter top, the binary's directory and out, but write nothing else.
	for _, p := range []string{top, filepath.Dir(bin)} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(out, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(db, 0o444); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, 0o755) })
	asNobody := func(args ...string) (string, error) {
		cmd := exec.Command(setpriv, append([]string{"--reuid=65534", "--regid=65534", "--clear-groups", bin}, args...)...)
		cmd.Dir = top
		b, err := cmd.CombinedOutput()
		return string(b), err
	}
	if o, err := asNobody("runs", "--db", db); err != nil || !strings.Contains(o, "done") {
		t.Errorf("runs of a read-only database: %v\n%s", err, o)
	}
	if o, err := asNobody("export", "--db", db, "--out", out); err != nil || !strings.HasPrefix(o, "run 1 exported") {
		t.Errorf("export of a read-only database: %v\n%s", err, o)
	}
	if _, err := os.Stat(filepath.Join(out, "ipv6domain.csv")); err != nil {
		t.Error(err)
	}
}

package scripts

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// fuzzShim is a `go` that plays one fuzz run per target name (the -fuzz argument, $5):
// a pass, Go's coordinator race at the deadline, a crasher, and two near misses of the
// race (another message beside it; a failing input written).
const fuzzShim = `#!/bin/bash
name=${5#^}; name=${name%$}; pkg=$8
case $name in
FuzzOK) echo "fuzz: elapsed: 0s, gathering baseline coverage"; echo PASS; exit 0 ;;
FuzzRace) printf -- '--- FAIL: FuzzRace (5.25s)\n    context deadline exceeded\nFAIL\nexit status 1\nFAIL\t%s\t5.3s\n' "$pkg"; exit 1 ;;
FuzzCrash) mkdir -p "$pkg/testdata/fuzz/FuzzCrash"; echo 'go test fuzz v1' > "$pkg/testdata/fuzz/FuzzCrash/0f1e"
	printf -- '--- FAIL: FuzzCrash (1.02s)\n    --- FAIL: FuzzCrash (0.00s)\n        x_test.go:9: boom\n    \n    Failing input written to testdata/fuzz/FuzzCrash/0f1e\n    To re-run:\n    go test -run=FuzzCrash/0f1e\nFAIL\n'; exit 1 ;;
FuzzTwo) printf -- '--- FAIL: FuzzTwo (5.10s)\n    context deadline exceeded\n    worker exited unexpectedly\nFAIL\n'; exit 1 ;;
FuzzRaceWritten) mkdir -p "$pkg/testdata/fuzz/FuzzRaceWritten"; echo 'go test fuzz v1' > "$pkg/testdata/fuzz/FuzzRaceWritten/77aa"
	printf -- '--- FAIL: FuzzRaceWritten (5.25s)\n    context deadline exceeded\nFAIL\n'; exit 1 ;;
esac
echo "shim: unknown target $name"; exit 3
`

// TestFuzzScript: scripts/fuzz.sh counts Go's fuzz coordinator race at the -fuzztime
// deadline (golang/go#75804) as passed, and fails on anything else that fails, stopping
// at the first such target.
func TestFuzzScript(t *testing.T) {
	tests := []struct {
		name    string
		targets []string
		ok      bool
		want    []string // in the output
		notWant []string
	}{
		{"passes", []string{"FuzzOK"}, true, []string{"fuzz FuzzOK (./p, 5s)", "PASS"}, []string{"fuzz: elapsed"}},
		{"coordinator race", []string{"FuzzRace", "FuzzOK"}, true,
			[]string{"context deadline exceeded", "Go's fuzz coordinator race (golang/go#75804", "fuzz FuzzOK"}, nil},
		{"crasher", []string{"FuzzCrash", "FuzzOK"}, false, []string{"Failing input written"}, []string{"fuzz FuzzOK", "coordinator race"}},
		{"race message beside another", []string{"FuzzTwo"}, false, []string{"worker exited unexpectedly"}, []string{"coordinator race"}},
		{"race message with an input written", []string{"FuzzRaceWritten"}, false, nil, []string{"coordinator race"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			shim := filepath.Join(dir, "go")
			if err := os.WriteFile(shim, []byte(fuzzShim), 0o755); err != nil {
				t.Fatal(err)
			}
			script, err := filepath.Abs("../../scripts/fuzz.sh")
			if err != nil {
				t.Fatal(err)
			}
			args := []string{script, "5s"}
			for _, n := range tc.targets {
				args = append(args, n+":./p")
			}
			cmd := exec.Command("bash", args...)
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "GO="+shim)
			out, err := cmd.CombinedOutput()
			if (err == nil) != tc.ok {
				t.Errorf("exit: %v, want success %v\n%s", err, tc.ok, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(string(out), w) {
					t.Errorf("output has %q:\n%s", w, out)
				}
			}
		})
	}
}

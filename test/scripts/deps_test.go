// Package scripts tests the shell scripts of scripts/.
package scripts

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDepsKeepsPolicyRCD runs scripts/deps.sh with every package "missing" (an empty
// V6M_DEPS_ROOT) and apt-get, sudo and go replaced by shims: during the install the
// policy-rc.d must say "exit 101" (no service starts), and afterwards the machine's own
// policy-rc.d must be back unchanged (it was overwritten, then deleted), or absent if
// there was none.
func TestDepsKeepsPolicyRCD(t *testing.T) {
	for _, existing := range []string{"#!/bin/sh\n# the machine's own policy\nexit 0\n", ""} {
		name := map[bool]string{true: "existing policy", false: "no policy"}[existing != ""]
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			bin := filepath.Join(dir, "bin")
			policy := filepath.Join(dir, "policy-rc.d")
			seen := filepath.Join(dir, "seen")
			shims := map[string]string{
				"apt-get": "#!/bin/sh\n[ \"$1\" = install ] && cat \"$V6M_POLICY_RC_D\" > " + seen + "\nexit 0\n",
				"sudo":    "#!/bin/sh\nexec \"$@\"\n",
				"go":      "#!/bin/sh\nexit 0\n",
			}
			if err := os.MkdirAll(bin, 0o755); err != nil {
				t.Fatal(err)
			}
			for n, text := range shims {
				if err := os.WriteFile(filepath.Join(bin, n), []byte(text), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if existing != "" {
				if err := os.WriteFile(policy, []byte(existing), 0o750); err != nil {
					t.Fatal(err)
				}
			}
			cmd := exec.Command("bash", "../../scripts/deps.sh")
			cmd.Env = append(os.Environ(), "PATH="+bin+":/usr/bin:/bin", "V6M_DEPS_ROOT="+filepath.Join(dir, "empty"),
				"V6M_POLICY_RC_D="+policy)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("deps.sh: %v\n%s", err, out)
			}
			during, err := os.ReadFile(seen)
			if err != nil || !strings.Contains(string(during), "exit 101") {
				t.Errorf("policy-rc.d during the install: %q (%v), want exit 101", during, err)
			}
			after, err := os.ReadFile(policy)
			switch {
			case existing == "" && err == nil:
				t.Errorf("policy-rc.d left behind: %q", after)
			case existing != "" && string(after) != existing:
				t.Errorf("the machine's policy-rc.d is now %q (%v), want it back: %q", after, err, existing)
			}
			if existing != "" {
				if fi, err := os.Stat(policy); err != nil || fi.Mode().Perm() != 0o750 {
					t.Errorf("policy-rc.d mode %v (%v), want 0750 kept", fi.Mode().Perm(), err)
				}
			}
		})
	}
}

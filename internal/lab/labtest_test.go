package lab

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/v6matrix/v6matrix/internal/netns"
)

// The lab tests share one lab, built on first use under a prefix unique to the test binary.
var (
	sharedOnce sync.Once
	sharedLab  *Lab
	sharedErr  error
	sharedUp   time.Duration
)

// testPrefix is unique per test process so that parallel `go test` runs do not collide.
func testPrefix() string { return fmt.Sprintf("v6mt%d-", os.Getpid()%100000) }

// needLab skips the test unless the machine can build the lab (root, namespaces, nft).
func needLab(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("lab tests need root to create network namespaces; skipping")
	}
	if err := exec.Command("unshare", "-n", "true").Run(); err != nil {
		t.Skipf("lab tests need network namespaces (unshare -n failed: %v); skipping", err)
	}
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("lab tests need nft (Debian package nftables); skipping")
	}
}

// labForTest returns the shared lab, building it on first use.
func labForTest(t *testing.T) *Lab {
	t.Helper()
	needLab(t)
	sharedOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		start := time.Now()
		log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		sharedLab, sharedErr = Up(ctx, Config{Prefix: testPrefix(), StateDir: os.TempDir() + "/" + testPrefix() + "lab", Logger: log})
		sharedUp = time.Since(start)
	})
	if sharedErr != nil {
		t.Fatalf("lab up: %v", sharedErr)
	}
	t.Logf("lab up took %v", sharedUp.Round(time.Millisecond))
	return sharedLab
}

func TestMain(m *testing.M) {
	code := m.Run()
	if sharedLab != nil {
		if err := sharedLab.Down(context.Background()); err != nil {
			fmt.Fprintf(os.Stderr, "lab down: %v\n", err)
			code = 1
		}
		if left, err := netns.List(testPrefix()); err != nil || len(left) > 0 {
			fmt.Fprintf(os.Stderr, "lab down left namespaces %v (%v)\n", left, err)
			code = 1
		}
	}
	os.Exit(code)
}

// inVantage runs a command inside the vantage namespace and returns its combined output.
func inVantage(t *testing.T, l *Lab, timeout time.Duration, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out strings.Builder
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := l.RunInVantage(cmd.Run)
	return out.String(), err
}

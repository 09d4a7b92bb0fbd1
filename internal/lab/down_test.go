package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/v6matrix/v6matrix/internal/netns"
)

// TestDownAfterCrash builds a second lab (network only, as a crashed `lab up` leaves it),
// starts a process inside it, and checks that Down removes namespaces, processes and state,
// and that a second Down succeeds.
func TestDownAfterCrash(t *testing.T) {
	needLab(t)
	prefix := fmt.Sprintf("v6mc%d-", os.Getpid()%100000)
	state := t.TempDir() + "/state"
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start := time.Now()
	l, err := Build(ctx, Config{Prefix: prefix, StateDir: state})
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	t.Logf("lab network built in %v", time.Since(start).Round(time.Millisecond))
	sleep := exec.Command("sleep", "60")
	if err := l.RunInVantage(sleep.Start); err != nil {
		t.Fatalf("start sleep in vantage: %v", err)
	}
	waited := make(chan error, 1)
	go func() { waited <- sleep.Wait() }()
	if _, err := Build(ctx, Config{Prefix: prefix, StateDir: state}); err == nil {
		t.Errorf("a second Build with the same prefix succeeded, want an error")
	}
	// Simulate the crash: forget the *Lab, clean up by prefix only.
	l.close()
	if err := Down(ctx, prefix, state); err != nil {
		t.Fatalf("down: %v", err)
	}
	select {
	case err := <-waited:
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Errorf("sleep in the lab ended with %v, want killed", err)
		}
	case <-time.After(5 * time.Second):
		t.Errorf("sleep inside the lab still runs after Down")
	}
	names, err := netns.List(prefix)
	if err != nil || len(names) != 0 {
		t.Errorf("namespaces left after Down: %v (%v)", names, err)
	}
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Errorf("state dir %s left after Down (%v)", state, err)
	}
	if _, err := os.Stat("/etc/netns/" + prefix + "vantage"); !os.IsNotExist(err) {
		t.Errorf("/etc/netns entry left after Down (%v)", err)
	}
	if err := Down(ctx, prefix, state); err != nil {
		t.Errorf("second Down: %v, want nil (idempotent)", err)
	}
}

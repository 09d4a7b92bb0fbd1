package lab

import (
	"context"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// lockedBuffer is an output shared by the command and the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestExecForwardsSignal cancels an Exec the way Ctrl-C does (a SignalCause of SIGINT):
// the command must get SIGINT and stop in its own way (its trap exits 7), not be killed
// (137), so that a crawl under `lab exec` keeps its graceful stop.
func TestExecForwardsSignal(t *testing.T) {
	l := labForTest(t)
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			ctx, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)
			var out lockedBuffer
			script := `trap 'kill $! 2>/dev/null; echo "got $SIG"; exit 7' ` + strings.TrimPrefix(sigName(sig), "SIG") +
				`; sleep 30 & echo ready; wait`
			done := make(chan int, 1)
			go func() {
				code, err := l.Exec(ctx, []string{"sh", "-c", strings.ReplaceAll(script, "$SIG", sigName(sig))}, nil, &out, &out)
				if err != nil {
					t.Error(err)
				}
				done <- code
			}()
			deadline := time.Now().Add(10 * time.Second)
			for !strings.Contains(out.String(), "ready") {
				if time.Now().After(deadline) {
					t.Fatalf("the command did not start: %q", out.String())
				}
				time.Sleep(10 * time.Millisecond)
			}
			cancel(SignalCause{Signal: sig})
			select {
			case code := <-done:
				if code != 7 || !strings.Contains(out.String(), "got "+sigName(sig)) {
					t.Errorf("exit %d, output %q; want the trap's exit 7 after %s", code, out.String(), sigName(sig))
				}
			case <-time.After(execGrace + 5*time.Second):
				t.Fatal("Exec did not return")
			}
		})
	}
}

func sigName(s syscall.Signal) string {
	return map[syscall.Signal]string{syscall.SIGINT: "SIGINT", syscall.SIGTERM: "SIGTERM"}[s]
}

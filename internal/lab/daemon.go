package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// daemonReadyTimeout bounds the wait for a daemon's servers to listen.
const daemonReadyTimeout = 20 * time.Second

// StartDaemon starts argv (a `v6matrix lab serve ...` command line) as a detached daemon in
// its own session, from inside the vantage namespace (so that any socket it opens without
// choosing a namespace is in the lab), logging to the state directory. It records the pid
// and waits until the daemon has written its listener list.
func (l *Lab) StartDaemon(ctx context.Context, argv []string) (int, error) {
	if err := os.MkdirAll(l.cfg.StateDir, 0o755); err != nil {
		return 0, fmt.Errorf("state dir: %w", err)
	}
	ready := filepath.Join(l.cfg.StateDir, listenersFile)
	_ = os.Remove(ready)
	logPath := filepath.Join(l.cfg.StateDir, logFile)
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0, fmt.Errorf("daemon log: %w", err)
	}
	defer logf.Close()
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return 0, fmt.Errorf("daemon stdin: %w", err)
	}
	defer devnull.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := l.RunInVantage(cmd.Start); err != nil {
		return 0, fmt.Errorf("start daemon: %w", err)
	}
	pid := cmd.Process.Pid
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	if err := os.WriteFile(filepath.Join(l.cfg.StateDir, pidFile), []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		return pid, fmt.Errorf("pid file: %w", err)
	}
	deadline := time.NewTimer(daemonReadyTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-exited:
			return pid, fmt.Errorf("daemon exited (%v); its log %s says: %s", err, logPath, tail(logPath))
		case <-deadline.C:
			return pid, fmt.Errorf("daemon not ready after %v; see %s", daemonReadyTimeout, logPath)
		case <-ctx.Done():
			return pid, fmt.Errorf("waiting for daemon: %w", ctx.Err())
		case <-tick.C:
			if _, err := os.Stat(ready); err == nil {
				return pid, nil
			} else if !errors.Is(err, os.ErrNotExist) {
				return pid, fmt.Errorf("daemon readiness: %w", err)
			}
		}
	}
}

// tail returns the last lines of a log file.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return strings.Join(lines, " | ")
}

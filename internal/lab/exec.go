package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/v6matrix/v6matrix/internal/netns"
)

// SignalCause is the cause (context.Cause) of a context cancelled by a signal: Exec
// forwards that signal to its command.
type SignalCause struct{ Signal syscall.Signal }

func (c SignalCause) Error() string { return "stopped by " + c.Signal.String() }

// execGrace is how long a command has to stop after the signal before it is killed.
const execGrace = 10 * time.Second

// Exec runs argv inside the vantage namespace, as `ip netns exec` would: in a private mount
// namespace where /etc/resolv.conf shows the lab's resolver. It returns the command's exit
// status (128+signal when killed by a signal); an error means it could not run.
//
// When ctx ends, the command gets the signal that ended it (a SignalCause, e.g. SIGINT on
// Ctrl-C), else SIGTERM, so that a crawl stops gracefully and stays resumable; only if it
// has not exited execGrace later is it killed.
func (l *Lab) Exec(ctx context.Context, argv []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	if len(argv) == 0 {
		return 0, errors.New("lab exec: no command")
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	cmd.Env = append(os.Environ(), "V6M_LAB_PREFIX="+l.cfg.Prefix, "V6M_LAB_RESOLVER="+l.sc.Resolver.String())
	cmd.Cancel = func() error {
		sig := syscall.SIGTERM
		var sc SignalCause
		if errors.As(context.Cause(ctx), &sc) {
			sig = sc.Signal
		}
		return cmd.Process.Signal(sig)
	}
	cmd.WaitDelay = execGrace
	// The starting thread's mount namespace is made private first, then it enters the
	// vantage: netns.Start retires that thread.
	if err := netns.Start(l.ns[l.sc.Vantage], cmd, l.vantageMounts); err != nil {
		return 0, fmt.Errorf("lab exec %s: %w", argv[0], err)
	}
	err := cmd.Wait()
	if ctx.Err() != nil && cmd.ProcessState != nil && cmd.ProcessState.Exited() {
		return cmd.ProcessState.ExitCode(), nil // stopped gracefully after the signal
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return ee.ExitCode(), nil
	default:
		return 0, fmt.Errorf("lab exec %s: %w", argv[0], err)
	}
}

// vantageMounts gives the calling (locked) thread a private mount namespace where
// /etc/resolv.conf shows the lab's resolver.
func (l *Lab) vantageMounts() error {
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("unshare mount namespace: %w", err)
	}
	// Keep our mounts from propagating back to the host.
	if err := unix.Mount("", "/", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	conf := filepath.Join("/etc/netns", l.VantageNS(), "resolv.conf")
	if _, err := os.Stat(conf); err == nil {
		if err := unix.Mount(conf, "/etc/resolv.conf", "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind %s on /etc/resolv.conf: %w", conf, err)
		}
	}
	return nil
}

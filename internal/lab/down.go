package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/v6matrix/v6matrix/internal/netns"
)

// Files in the state directory.
const (
	pidFile       = "daemon.pid"
	listenersFile = "listeners"
	logFile       = "daemon.log"
)

// Down removes every trace of the lab with this prefix, whatever state a crash left it in:
// the server daemon named in stateDir's pid file ("" means StateDir(prefix)), every process
// living in one of the lab's namespaces, the namespaces themselves (their links go with
// them), /etc/netns/<prefix>* and the state directory. It is idempotent.
func Down(ctx context.Context, prefix, stateDir string) error {
	if !prefixRE.MatchString(prefix) {
		return fmt.Errorf("lab down: bad prefix %q", prefix)
	}
	if stateDir == "" {
		stateDir = StateDir(prefix)
	}
	var errs []error
	if pid, err := readPID(stateDir); err == nil && isLabDaemon(pid) {
		errs = append(errs, stopProcesses(ctx, []int{pid}))
	}
	names, err := netns.List(prefix)
	if err != nil {
		errs = append(errs, err)
	}
	pids, err := processesIn(names)
	errs = append(errs, err, stopProcesses(ctx, pids))
	for _, n := range names {
		if err := netns.Delete(n); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	etc, _ := filepath.Glob(filepath.Join("/etc/netns", prefix+"*"))
	for _, d := range etc {
		errs = append(errs, os.RemoveAll(d))
	}
	_ = os.Remove("/etc/netns") // only if empty: other tools may keep files there
	errs = append(errs, os.RemoveAll(stateDir))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("lab down %s: %w", prefix, err)
	}
	return nil
}

// readPID reads the daemon's pid file.
func readPID(stateDir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(stateDir, pidFile))
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// isLabDaemon reports whether pid runs `... lab serve ...` (a recycled pid is left alone).
func isLabDaemon(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	args := bytes.Split(b, []byte{0})
	for i := 0; i+1 < len(args); i++ {
		if string(args[i]) == "lab" && string(args[i+1]) == "serve" {
			return true
		}
	}
	return false
}

// processesIn returns the pids (other than ours) whose network namespace is one of names.
func processesIn(names []string) ([]int, error) {
	if len(names) == 0 {
		return nil, nil
	}
	want := map[string]bool{}
	for _, n := range names {
		var st syscall.Stat_t
		if err := syscall.Stat(filepath.Join(netns.Dir, n), &st); err != nil {
			continue
		}
		want[fmt.Sprintf("net:[%d]", st.Ino)] = true
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid))
		if err == nil && want[link] {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// stopProcesses sends SIGTERM, waits up to 3 s, then SIGKILLs the survivors.
func stopProcesses(ctx context.Context, pids []int) error {
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGTERM)
	}
	deadline := time.Now().Add(3 * time.Second)
	for _, pid := range pids {
		for alive(pid) && time.Now().Before(deadline) && ctx.Err() == nil {
			time.Sleep(20 * time.Millisecond)
		}
		if alive(pid) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	for _, pid := range pids {
		for i := 0; i < 100 && alive(pid); i++ {
			time.Sleep(10 * time.Millisecond)
		}
		if alive(pid) {
			return fmt.Errorf("process %d survived SIGKILL", pid)
		}
	}
	return nil
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}

// writeResolvConf points the vantage's /etc/resolv.conf (as `ip netns exec` and Exec show
// it) at the lab resolver.
func (l *Lab) writeResolvConf() error {
	dir := filepath.Join("/etc/netns", l.VantageNS())
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("resolv.conf: %w", err)
	}
	text := fmt.Sprintf("# v6matrix lab %s: the lab's recursive resolver\nnameserver %s\n",
		l.cfg.Prefix, l.sc.Resolver.Addr())
	if err := os.WriteFile(filepath.Join(dir, "resolv.conf"), []byte(text), 0o644); err != nil {
		return fmt.Errorf("resolv.conf: %w", err)
	}
	return nil
}

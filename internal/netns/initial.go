package netns

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"golang.org/x/sys/unix"
)

// InInitial reports whether this process runs in an initial network namespace, one whose
// routes lead off the machine, rather than a lab's or a test's namespace: the kernel's
// own (that of its threads, kthreadd, PID 2, when it is visible) or PID 1's (the host's
// init; in a container, the container's). It compares the namespace files' device and
// inode, as `ip netns identify` does, for every thread of the process: one that enters
// a namespace on a locked thread (Do) keeps its other threads, and the goroutines they
// run, in the initial one, so it is in the initial one. PID 1's namespace may be
// unreadable even for root (it needs the right to trace PID 1); the kernel thread's is
// the reference then. When neither can be read, the error says so: callers guarding
// against sending from the host take that as "initial".
func InInitial() (bool, error) {
	refs := []string{"/proc/1/ns/net"}
	if kernelThread("/proc/2/stat") {
		refs = append(refs, "/proc/2/ns/net")
	}
	return inAny("/proc/self/task", refs...)
}

// inAny reports whether a thread listed in the directory tasks (/proc/PID/task) is in
// the namespace of one of the namespace files refs; refs that cannot be read are
// skipped, unless none can be.
func inAny(tasks string, refs ...string) (bool, error) {
	var ids [][2]uint64 // device, inode
	var errs []error
	for _, ref := range refs {
		var r unix.Stat_t
		if err := unix.Stat(ref, &r); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", ref, err))
			continue
		}
		ids = append(ids, [2]uint64{r.Dev, r.Ino})
	}
	if len(ids) == 0 {
		return false, fmt.Errorf("cannot tell whether this process runs in the initial network namespace: %w", errors.Join(errs...))
	}
	ents, err := os.ReadDir(tasks)
	if err != nil {
		return false, fmt.Errorf("threads of this process: %w", err)
	}
	seen := 0
	for _, e := range ents {
		var s unix.Stat_t
		if err := unix.Stat(filepath.Join(tasks, e.Name(), "ns", "net"), &s); err != nil {
			continue // a thread that ended meanwhile
		}
		seen++
		if slices.Contains(ids, [2]uint64{s.Dev, s.Ino}) {
			return true, nil
		}
	}
	if seen == 0 {
		return false, fmt.Errorf("threads of this process: no network namespace readable in %s", tasks)
	}
	return false, nil
}

// kernelThread reports whether the /proc/PID/stat file names a kernel thread (the
// PF_KTHREAD flag): in a PID namespace, PID 2 is an ordinary process.
func kernelThread(stat string) bool {
	b, err := os.ReadFile(stat)
	if err != nil {
		return false
	}
	// After "pid (comm) ": state ppid pgrp session tty_nr tpgid flags ...
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return false
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 7 {
		return false
	}
	flags, err := strconv.ParseUint(string(f[6]), 10, 64)
	const pfKthread = 0x00200000
	return err == nil && flags&pfKthread != 0
}

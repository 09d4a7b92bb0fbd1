package netns

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestInInitial: this test process (in the host's namespace) is in the initial one, and
// the same binary started inside a fresh namespace is not. A process entering a
// namespace on one locked thread (Do) is still in the initial one.
func TestInInitial(t *testing.T) {
	if os.Getenv("V6MATRIX_NETNS_CHILD") == "1" {
		in, err := InInitial()
		fmt.Printf("initial=%v err=%v\n", in, err)
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a namespace")
	}
	if in, err := InInitial(); err != nil || !in {
		t.Fatalf("InInitial in the test process = %v, %v; want true", in, err)
	}
	var rnd [3]byte
	rand.Read(rnd[:])
	name := "v6mini-" + hex.EncodeToString(rnd[:])
	h, err := Create(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		h.Close()
		if err := Delete(name); err != nil {
			t.Error(err)
		}
	})
	if err := Do(h, func() error {
		if in, err := InInitial(); err != nil || !in {
			return fmt.Errorf("InInitial on a thread inside %s = %v, %v; want true (the process is not inside)", name, in, err)
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestInInitial$", "-test.count=1")
	cmd.Env = append(os.Environ(), "V6MATRIX_NETNS_CHILD=1")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := Start(h, cmd, nil); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "initial=false err=<nil>") {
		t.Errorf("InInitial in a process inside %s:\n%s", name, out.String())
	}
}

// TestInAny: unreadable references are skipped unless none can be read, a missing
// thread list is an error, and PID 2 is recognised as a kernel thread.
func TestInAny(t *testing.T) {
	const tasks, self = "/proc/self/task", "/proc/self/ns/net"
	for _, tc := range []struct {
		name  string
		tasks string
		refs  []string
		in    bool
		err   string
	}{
		{name: "same", tasks: tasks, refs: []string{self}, in: true},
		{name: "one reference unreadable", tasks: tasks, refs: []string{"/nonexistent/1", self}, in: true},
		{name: "no thread list", tasks: "/nonexistent/task", refs: []string{self},
			err: "threads of this process: open /nonexistent/task: no such file or directory"},
		{name: "no reference readable", tasks: tasks, refs: []string{"/nonexistent/1", "/nonexistent/2"},
			err: "cannot tell whether this process runs in the initial network namespace: /nonexistent/1: no such file or directory\n/nonexistent/2: no such file or directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in, err := inAny(tc.tasks, tc.refs...)
			if got := fmt.Sprint(err); (tc.err == "" && err != nil) || (tc.err != "" && got != tc.err) {
				t.Fatalf("error %v, want %q", err, tc.err)
			}
			if in != tc.in {
				t.Errorf("in = %v, want %v", in, tc.in)
			}
		})
	}
	if !kernelThread("/proc/2/stat") && os.Getenv("container") == "" {
		t.Logf("PID 2 is not a kernel thread here (a PID namespace?)")
	}
	if kernelThread("/proc/self/stat") {
		t.Error("the test process is taken for a kernel thread")
	}
}

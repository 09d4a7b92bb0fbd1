package lab

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestReadStatus(t *testing.T) {
	t.Parallel()
	l := labForTest(t)
	st, err := ReadStatus(l.Prefix(), l.StateDir())
	if err != nil {
		t.Fatalf("ReadStatus: %v", err)
	}
	if got, want := len(st.Namespaces), len(l.Scenario().Nodes); got != want {
		t.Errorf("%d namespaces, want %d", got, want)
	}
	mtus := map[string]int{}
	for _, ns := range st.Namespaces {
		if ns.Name != l.NodeNS("r2") {
			continue
		}
		for _, ifc := range ns.Interfaces {
			mtus[ifc.Name] = ifc.MTU
		}
	}
	want := map[string]int{"lo": 65536, "l1": 1480, "tun": 1280, "bh": 1400}
	if diff := cmp.Diff(want, mtus); diff != "" {
		t.Errorf("r2 interfaces (-want +got):\n%s", diff)
	}
	if st.DaemonPID != 0 {
		t.Errorf("daemon pid %d for an in-process lab, want 0", st.DaemonPID)
	}
}

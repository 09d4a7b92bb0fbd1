package distrib

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestPack packs networks into probe jobs: a large network alone, the small ones
// together up to the job size, no network split, every address once, largest first.
func TestPack(t *testing.T) {
	var nets []network
	for i, n := range []int{100, 40, 30, 20, 5, 1, 1} {
		p := netip.MustParsePrefix(fmt.Sprintf("192.0.%d.0/24", i))
		nw := network{prefix: p}
		for j := range n {
			nw.ips = append(nw.ips, netip.AddrFrom4([4]byte{192, 0, byte(i), byte(j + 1)}))
		}
		nets = append(nets, nw)
	}
	jobs := pack(nets, 64)
	var sizes [][]int
	seen := map[netip.Addr]bool{}
	for _, j := range jobs {
		var s []int
		for _, p := range j.Networks {
			n := 0
			for _, ip := range j.IPs {
				if p.Contains(ip) {
					n++
				}
			}
			s = append(s, n)
		}
		for _, ip := range j.IPs {
			if seen[ip] {
				t.Errorf("%v in two jobs", ip)
			}
			seen[ip] = true
		}
		sizes = append(sizes, s)
	}
	want := [][]int{{100}, {30, 20, 5, 1, 1}, {40}}
	if diff := cmp.Diff(want, sizes); diff != "" {
		t.Errorf("jobs' networks by size (-want +got):\n%s", diff)
	}
	if len(seen) != 197 {
		t.Errorf("%d addresses in the jobs, want 197", len(seen))
	}
	if got := pack(nil, 64); len(got) != 0 {
		t.Errorf("no network: %d jobs", len(got))
	}
}

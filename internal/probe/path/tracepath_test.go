package path

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// resume is tracepath's summary line: "Resume: pmtu X [hops Y] [back Z]".
type resume struct {
	PMTU, Hops, Back int // 0 when tracepath did not print it
}

var resumeRE = regexp.MustCompile(`Resume: pmtu (\d+)(?: hops (\d+))?(?: back (\d+))?`)

// runTracepath runs iputils tracepath -n from the client namespace.
func runTracepath(t *testing.T, tp *topo, family, maxHops int, addr string) resume {
	t.Helper()
	if _, err := exec.LookPath("tracepath"); err != nil {
		t.Skipf("needs tracepath (Debian iputils-tracepath): %v", err)
	}
	out, err := tp.exec("client", nil, "tracepath", "-n", fmt.Sprintf("-%d", family), "-m", strconv.Itoa(maxHops), addr)
	if err != nil {
		t.Fatalf("tracepath: %v\n%s", err, out)
	}
	m := resumeRE.FindSubmatch(out)
	if m == nil {
		t.Fatalf("tracepath printed no Resume line:\n%s", out)
	}
	var r resume
	for i, p := range []*int{&r.PMTU, &r.Hops, &r.Back} {
		if len(m[i+1]) > 0 {
			*p, _ = strconv.Atoi(string(m[i+1]))
		}
	}
	t.Logf("tracepath -%d:\n%s", family, out)
	return r
}

// TestTraceMatchesTracepath traces every path of the throwaway topology with
// both tools and asserts that pmtu, hops and back agree, and equal what the
// topology dictates.
func TestTraceMatchesTracepath(t *testing.T) {
	requireLab(t)
	type want struct {
		PMTU     int
		Hops     int
		Back     int
		Reached  bool
		Reason   string
		HopsList []string
	}
	cases := []struct {
		name    string
		role    string // namespace the nft ruleset goes to; "" for none
		ruleset string
		maxHops int
		gap     int          // GapLimit; 0 = off, like tracepath
		want    map[int]want // by family
	}{
		{
			name:    "mtu-1400-1280-link",
			maxHops: 5,
			want: map[int]want{
				4: {1400, 3, 3, true, ReasonReached, []string{r1Addr[4], r2Addr[4], target4}},
				6: {1280, 3, 3, true, ReasonReached, []string{r1Addr[6], r2Addr[6], target6}},
			},
		},
		{
			name: "router-drops-time-exceeded",
			role: "r2",
			ruleset: `table inet v6mpath {
	chain out { type filter hook output priority 0; policy accept;
		icmp type time-exceeded drop
		icmpv6 type time-exceeded drop
	}
}`,
			maxHops: 5,
			want: map[int]want{
				4: {1400, 3, 3, true, ReasonReached, []string{r1Addr[4], "*", target4}},
				6: {1280, 3, 3, true, ReasonReached, []string{r1Addr[6], "*", target6}},
			},
		},
		{
			name: "target-drops-everything",
			role: "target",
			ruleset: `table inet v6mpath {
	chain in { type filter hook input priority 0; policy drop;
		icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept
	}
}`,
			maxHops: 5,
			want: map[int]want{
				4: {1400, 0, 0, false, ReasonMaxHops, []string{r1Addr[4], r2Addr[4], "*", "*", "*"}},
				6: {1280, 0, 0, false, ReasonMaxHops, []string{r1Addr[6], r2Addr[6], "*", "*", "*"}},
			},
		},
		{
			name: "target-drops-everything-gap-limit",
			role: "target",
			ruleset: `table inet v6mpath {
	chain in { type filter hook input priority 0; policy drop;
		icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept
	}
}`,
			maxHops: 5,
			gap:     2,
			want: map[int]want{
				4: {1400, 0, 0, false, ReasonGapLimit, []string{r1Addr[4], r2Addr[4], "*", "*"}},
				6: {1280, 0, 0, false, ReasonGapLimit, []string{r1Addr[6], r2Addr[6], "*", "*"}},
			},
		},
		{
			name: "pmtu-black-hole",
			role: "r1",
			ruleset: `table inet v6mpath {
	chain out { type filter hook output priority 0; policy accept;
		icmpv6 type packet-too-big drop
		icmp type destination-unreachable icmp code frag-needed drop
	}
}`,
			maxHops: 4,
			want: map[int]want{
				4: {1500, 0, 0, false, ReasonBlackHole, []string{r1Addr[4], "*", "*", "*"}},
				6: {1500, 0, 0, false, ReasonBlackHole, []string{r1Addr[6], "*", "*", "*"}},
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tp := newTopo(t)
			if tc.ruleset != "" {
				tp.nft(tc.role, tc.ruleset)
			}
			for _, family := range []int{4, 6} {
				t.Run(fmt.Sprintf("ipv%d", family), func(t *testing.T) {
					t.Parallel()
					addr := target4
					if family == 6 {
						addr = target6
					}
					// tracepath first, on a fresh topology: it honours the
					// kernel's PMTU cache, our probe mode ignores it.
					tpr := runTracepath(t, tp, family, tc.maxHops, addr)

					cfg := DefaultConfig()
					cfg.MaxHops, cfg.GapLimit = tc.maxHops, tc.gap
					cfg.WaitPerProbe = 300 * time.Millisecond
					cfg.Socket = tp.socketIn("client")
					tr, err := New(cfg)
					if err != nil {
						t.Fatal(err)
					}
					ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
					defer cancel()
					got, err := tr.Trace(ctx, netip.MustParseAddr(addr))
					if err != nil {
						t.Fatalf("Trace: %v", err)
					}
					t.Logf("ours: %+v", got)

					ours := resume{PMTU: got.PMTUBytes, Hops: got.Hops, Back: got.Back}
					if diff := cmp.Diff(tpr, ours); diff != "" {
						t.Errorf("ours differs from tracepath (-tracepath +ours):\n%s", diff)
					}
					w := tc.want[family]
					wantRes := Result{Family: family, PMTUBytes: w.PMTU, Hops: w.Hops, Back: w.Back,
						HopList: w.HopsList, Reached: w.Reached, Reason: w.Reason}
					if diff := cmp.Diff(wantRes, got); diff != "" {
						t.Errorf("Trace result (-want +got):\n%s", diff)
					}
				})
			}
		})
	}
}

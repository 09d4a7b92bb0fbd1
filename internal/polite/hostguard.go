package polite

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/v6matrix/v6matrix/internal/netns"
)

// loopback holds the only ranges --allow-ranges may name in the host's namespace.
var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// CheckAllowRanges refuses allow ranges that are not loopback when this process runs in
// the host's network namespace (netns.InInitial). Allowing a special-purpose range lets
// the DNS stage ask parent name servers in it directly and the probes reach it; in the
// host's namespace those packets leave through the default route, to whatever network
// holds the range there. The lab and the synthetic Internet crawl from inside their own
// namespaces, which have no route off the machine, so they pass; loopback ranges never
// leave the machine, so tests on loopback pass anywhere. When the namespace cannot be
// told, the process is taken to be in the host's.
func CheckAllowRanges(allow []netip.Prefix) error {
	return checkAllowRanges(allow, netns.InInitial)
}

// checkAllowRanges is CheckAllowRanges with the namespace test given.
func checkAllowRanges(allow []netip.Prefix, inInitial func() (bool, error)) error {
	var outside []string
	for _, p := range allow {
		if !isLoopback(p) {
			outside = append(outside, p.String())
		}
	}
	if len(outside) == 0 {
		return nil
	}
	where := "this process runs in the host's network namespace"
	in, err := inInitial()
	switch {
	case err != nil:
		where = fmt.Sprintf("this process may run in the host's network namespace (%v)", err)
	case !in:
		return nil
	}
	return fmt.Errorf("--allow-ranges %s: not loopback, and %s, where packets to these ranges would leave the machine "+
		"through the default route: crawl special-purpose ranges only from inside a lab's or test's network "+
		"namespace (v6matrix lab exec, ip netns exec), or allow only 127.0.0.0/8 and ::1/128", strings.Join(outside, ","), where)
}

// isLoopback reports whether p lies inside a loopback range.
func isLoopback(p netip.Prefix) bool {
	for _, l := range loopback {
		if l.Bits() <= p.Bits() && l.Contains(p.Addr()) {
			return true
		}
	}
	return false
}

package polite_test

import (
	"errors"
	"fmt"
	"net/netip"
	"testing"

	"github.com/v6matrix/v6matrix/internal/netns"
	"github.com/v6matrix/v6matrix/internal/polite"
)

// TestCheckAllowRanges: the exact messages for ranges that are not loopback in the
// host's namespace (or where it cannot be told), and what passes.
func TestCheckAllowRanges(t *testing.T) {
	host := func() (bool, error) { return true, nil }
	lab := func() (bool, error) { return false, nil }
	unknown := func() (bool, error) { return false, errors.New("cannot tell: /proc/1/ns/net: permission denied") }
	const advice = ", where packets to these ranges would leave the machine through the default route: crawl " +
		"special-purpose ranges only from inside a lab's or test's network namespace (v6matrix lab exec, ip netns exec), " +
		"or allow only 127.0.0.0/8 and ::1/128"
	tests := []struct {
		name  string
		allow []netip.Prefix
		in    func() (bool, error)
		want  string
	}{
		{name: "none", in: host},
		{name: "loopback in the host", allow: prefixes("127.0.0.0/8", "::1/128"), in: host},
		{name: "part of loopback in the host", allow: prefixes("127.3.0.0/16", "127.0.0.53/32"), in: host},
		{name: "loopback where it cannot be told", allow: prefixes("127.0.0.0/8"), in: unknown},
		{name: "lab ranges in a lab", allow: prefixes("198.18.0.0/15", "2001:db8::/32"), in: lab},
		{name: "lab ranges in the host", allow: prefixes("198.18.0.0/15", "2001:db8::/32"), in: host,
			want: "--allow-ranges 198.18.0.0/15,2001:db8::/32: not loopback, and this process runs in the host's network namespace" + advice},
		{name: "loopback and one other in the host", allow: prefixes("127.0.0.0/8", "10.0.0.0/8"), in: host,
			want: "--allow-ranges 10.0.0.0/8: not loopback, and this process runs in the host's network namespace" + advice},
		{name: "wider than loopback", allow: prefixes("0.0.0.0/0"), in: host,
			want: "--allow-ranges 0.0.0.0/0: not loopback, and this process runs in the host's network namespace" + advice},
		{name: "IPv6 beside ::1", allow: prefixes("::/127"), in: host,
			want: "--allow-ranges ::/127: not loopback, and this process runs in the host's network namespace" + advice},
		{name: "IPv4-mapped loopback", allow: prefixes("::ffff:127.0.0.0/104"), in: host,
			want: "--allow-ranges ::ffff:127.0.0.0/104: not loopback, and this process runs in the host's network namespace" + advice},
		{name: "namespace unknown", allow: prefixes("2001:db8::/32"), in: unknown,
			want: "--allow-ranges 2001:db8::/32: not loopback, and this process may run in the host's network namespace " +
				"(cannot tell: /proc/1/ns/net: permission denied)" + advice},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := polite.CheckAllowRangesIn(tc.allow, tc.in)
			if got := fmt.Sprint(err); (tc.want == "" && err != nil) || (tc.want != "" && got != tc.want) {
				t.Errorf("got  %v\nwant %s", err, tc.want)
			}
		})
	}
}

// TestCheckAllowRangesHere: in this test process, which runs in the host's namespace
// (go test is not started inside a lab), the lab's ranges are refused.
func TestCheckAllowRangesHere(t *testing.T) {
	in, err := netns.InInitial()
	if err == nil && !in {
		t.Skip("this test runs inside a network namespace of its own")
	}
	if err := polite.CheckAllowRanges(prefixes("198.18.0.0/15")); err == nil {
		t.Error("198.18.0.0/15 allowed in the host's namespace")
	}
	if err := polite.CheckAllowRanges(prefixes("127.0.0.0/8", "::1/128")); err != nil {
		t.Errorf("loopback refused: %v", err)
	}
}

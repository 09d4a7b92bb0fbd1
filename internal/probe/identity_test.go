package probe

import (
	"net/netip"
	"testing"
)

func TestIdentity(t *testing.T) {
	id := NewIdentity("1.2.3", "", "crawler.example.net")
	if want := "v6matrix/1.2.3 (+" + DefaultInfoURL + ")"; id.HTTPUserAgent != want {
		t.Errorf("HTTPUserAgent = %q, want %q", id.HTTPUserAgent, want)
	}
	if err := id.Validate(); err != nil {
		t.Errorf("Validate(default) = %v", err)
	}
	tests := []struct {
		name string
		id   Identity
		want string
	}{
		{"empty EHLO", Identity{HTTPUserAgent: "ua", EHLOName: ""}, "identity: empty EHLO name"},
		{"underscore", Identity{HTTPUserAgent: "ua", EHLOName: "a_b.example"}, `identity: EHLO name "a_b.example" has an invalid character '_'`},
		{"empty label", Identity{HTTPUserAgent: "ua", EHLOName: "a..example"}, `identity: EHLO name "a..example" has an invalid label ""`},
		{"UA line break", Identity{HTTPUserAgent: "ua\r\nX: y", EHLOName: "a.example"}, "identity: HTTP User-Agent contains a line break"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.id.Validate()
			if err == nil || err.Error() != tc.want {
				t.Errorf("Validate() = %v, want %q", err, tc.want)
			}
		})
	}
	if err := (Identity{HTTPUserAgent: "ua", EHLOName: "[192.0.2.1]"}).Validate(); err != nil {
		t.Errorf("address literal: %v", err)
	}
}

func TestNetwork(t *testing.T) {
	tests := []struct {
		addr string
		want string
	}{
		{"192.0.2.1", "tcp4"},
		{"2001:db8::1", "tcp6"},
		{"::ffff:192.0.2.1", "tcp6"},
	}
	for _, tc := range tests {
		t.Run(tc.addr, func(t *testing.T) {
			got, err := Network("tcp", netip.MustParseAddr(tc.addr))
			if err != nil || got != tc.want {
				t.Errorf("Network = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	if _, err := Network("tcp", netip.Addr{}); err == nil {
		t.Error("Network(zero addr) succeeded")
	}
	if got := HostPort(netip.MustParseAddr("2001:db8::1"), 25); got != "[2001:db8::1]:25" {
		t.Errorf("HostPort = %q", got)
	}
}

package lab

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/v6matrix/v6matrix/internal/netns"
)

// nftTable is the nftables table the lab creates in a node that needs packet filtering.
const nftTable = "v6mlab"

// nftRuleset returns the nftables ruleset for a node's faults, or "" when it needs none.
func nftRuleset(f NodeFaults) string {
	var out, in, fwd []string
	for _, a := range f.Blackhole {
		fam := "ip"
		if a.Is6() {
			fam = "ip6"
		}
		fwd = append(fwd, fmt.Sprintf("%s daddr %s drop", fam, a))
	}
	if f.DropTimeExceeded {
		out = append(out, "icmp type time-exceeded drop", "icmpv6 type time-exceeded drop")
	}
	for _, mtu := range f.DropPTB {
		if mtu == 0 {
			out = append(out, "icmpv6 type packet-too-big drop")
		} else {
			out = append(out, fmt.Sprintf("icmpv6 type packet-too-big icmpv6 mtu %d drop", mtu))
		}
	}
	for _, port := range f.FilterTCP {
		in = append(in, fmt.Sprintf("tcp dport %d drop", port))
	}
	if len(out) == 0 && len(in) == 0 && len(fwd) == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "table inet %s {\n", nftTable)
	fmt.Fprintf(&b, "  chain output_faults {\n    type filter hook output priority 0; policy accept;\n")
	for _, r := range out {
		fmt.Fprintf(&b, "    %s\n", r)
	}
	fmt.Fprintf(&b, "  }\n  chain input_faults {\n    type filter hook input priority 0; policy accept;\n")
	for _, r := range in {
		fmt.Fprintf(&b, "    %s\n", r)
	}
	// Forwarding drops come after the hop-limit check, so the router still answers
	// traceroute probes that expire on it: the target looks silent, not the router.
	fmt.Fprintf(&b, "  }\n  chain forward_faults {\n    type filter hook forward priority 0; policy accept;\n")
	for _, r := range fwd {
		fmt.Fprintf(&b, "    %s\n", r)
	}
	fmt.Fprintf(&b, "  }\n}\n")
	return b.String()
}

// installFilters loads each node's nftables ruleset with nft(8), run inside the namespace.
func (l *Lab) installFilters(ctx context.Context) error {
	for _, n := range l.sc.Nodes {
		rules := nftRuleset(n.Faults)
		if rules == "" {
			continue
		}
		nft, err := exec.LookPath("nft")
		if err != nil {
			return fmt.Errorf("node %s needs packet filtering: nft not found (install Debian package nftables): %w", n.Name, err)
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		var stderr bytes.Buffer
		cmd := exec.CommandContext(cctx, nft, "-f", "-")
		cmd.Stdin = strings.NewReader(rules)
		cmd.Stderr = &stderr
		err = netns.Do(l.ns[n.Name], cmd.Run)
		cancel()
		if err != nil {
			return fmt.Errorf("node %s: nft: %w: %s", n.Name, err, strings.TrimSpace(stderr.String()))
		}
	}
	return nil
}

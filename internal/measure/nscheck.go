package measure

import (
	"math/rand/v2"
	"time"

	"github.com/v6matrix/v6matrix/internal/polite"
	"github.com/v6matrix/v6matrix/internal/result"
)

// DefaultNSCheck returns the limits of the name server checks (docs/POLITENESS.md):
// one SOA query per (domain, name server address), at most one in flight and 50 per
// second per address (a provider's name server serving many domains of a run sees
// what a resolver's ordinary traffic looks like), 500 per second over the run. They
// all go to port 53, so the port rule has nothing to limit.
func DefaultNSCheck() polite.Config {
	c := polite.DefaultConfig()
	c.AddrGap, c.NetGap = 20*time.Millisecond, 0
	c.Rate, c.Workers = 500, 64
	c.PortWindow, c.MaxPortsPerWindow = 0, 1
	return c
}

// nsPlans makes one plan per (domain, name server address) pair, for the addresses
// the gate allows, in a seeded random order so that the domains of a big provider do
// not queue behind each other.
func nsPlans(pairs []nsPair, gate *polite.Gate, seed int64) []plan {
	var out []plan
	for _, pr := range pairs {
		if ok, _ := gate.Allowed(pr.ip); !ok {
			continue
		}
		t := &target{ip: pr.ip, nsZone: pr.domain, host: pr.host}
		out = append(out, plan{t: t, remote: []string{result.KindDNS53}})
	}
	rand.New(rand.NewPCG(uint64(seed), 0x6e73)).Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

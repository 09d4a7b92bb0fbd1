package polite_test

import (
	"flag"
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/v6matrix/v6matrix/internal/polite"
)

func TestDefaultConfig(t *testing.T) {
	want := polite.Config{
		AddrGap: time.Second, NetGap: 200 * time.Millisecond, V4Bits: 24, V6Bits: 48, Rate: 50,
		PortWindow: 10 * time.Second, MaxPortsPerWindow: 2, Workers: 256, Seed: 1,
	}
	if diff := cmp.Diff(want, polite.DefaultConfig()); diff != "" {
		t.Errorf("DefaultConfig (-want +got):\n%s (update docs/POLITENESS.md too)", diff)
	}
	if err := polite.DefaultConfig().Validate(); err != nil {
		t.Errorf("DefaultConfig().Validate() = %v", err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*polite.Config)
		want string
	}{
		{"negative addr gap", func(c *polite.Config) { c.AddrGap = -time.Second }, "polite: AddrGap must not be negative, got -1s"},
		{"negative net gap", func(c *polite.Config) { c.NetGap = -time.Millisecond }, "polite: NetGap must not be negative, got -1ms"},
		{"v4 bits", func(c *polite.Config) { c.V4Bits = 33 }, "polite: V4Bits must be between 0 and 32, got 33"},
		{"v6 bits", func(c *polite.Config) { c.V6Bits = -1 }, "polite: V6Bits must be between 0 and 128, got -1"},
		{"zero rate", func(c *polite.Config) { c.Rate = 0 }, "polite: Rate must be positive (+Inf lifts the cap), got 0"},
		{"NaN rate", func(c *polite.Config) { c.Rate = math.NaN() }, "polite: Rate must be positive (+Inf lifts the cap), got NaN"},
		{"negative window", func(c *polite.Config) { c.PortWindow = -time.Second }, "polite: PortWindow must not be negative, got -1s"},
		{"no ports", func(c *polite.Config) { c.MaxPortsPerWindow = 0 }, "polite: MaxPortsPerWindow must be at least 1, got 0"},
		{"no workers", func(c *polite.Config) { c.Workers = 0 }, "polite: Workers must be at least 1, got 0"},
		{"several", func(c *polite.Config) { c.Workers = 0; c.V4Bits = 40 },
			"polite: V4Bits must be between 0 and 32, got 40\npolite: Workers must be at least 1, got 0"},
		{"zero value", func(c *polite.Config) { *c = polite.Config{} },
			"polite: Rate must be positive (+Inf lifts the cap), got 0\npolite: MaxPortsPerWindow must be at least 1, got 0\npolite: Workers must be at least 1, got 0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := polite.DefaultConfig()
			tc.edit(&c)
			err := c.Validate()
			if err == nil || err.Error() != tc.want {
				t.Errorf("Validate() = %v, want %q", err, tc.want)
			}
			if _, err := polite.New(c, nil); err == nil {
				t.Errorf("New accepted an invalid config")
			}
		})
	}
}

func TestAddFlags(t *testing.T) {
	c := polite.DefaultConfig()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	c.AddFlags(fs)
	err := fs.Parse([]string{"-addr-gap=2s", "-net-gap=1s", "-net-bits-v4=16", "-net-bits-v6=32", "-rate=inf",
		"-port-window=0", "-max-ports=3", "-workers=8", "-seed=42"})
	if err != nil {
		t.Fatal(err)
	}
	want := polite.Config{AddrGap: 2 * time.Second, NetGap: time.Second, V4Bits: 16, V6Bits: 32, Rate: math.Inf(1),
		PortWindow: 0, MaxPortsPerWindow: 3, Workers: 8, Seed: 42}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("parsed config (-want +got):\n%s", diff)
	}
}

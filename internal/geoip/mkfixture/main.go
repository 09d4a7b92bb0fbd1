// Command mkfixture writes the GeoIP test fixtures, tiny City and ASN MaxMind DB
// files covering the lab's documentation ranges (see ../testdata/README.md):
//
//	go run ./internal/geoip/mkfixture [-dir internal/geoip/testdata]
//
// The output is deterministic (fixed build epoch), so regenerating an
// unchanged generator leaves the committed files unchanged.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// place is one City fixture network. An empty city leaves out city,
// subdivision and location (a country-only record).
type place struct {
	network           string
	country           string
	countryID         uint32
	region, regionISO string
	regionID          uint32
	city              string
	cityID            uint32
	lat, lon          float64
	timeZone          string
}

// as is one ASN fixture network.
type as struct {
	network string
	number  uint32
	org     string
}

var places = []place{
	{"192.0.2.0/24", "GB", 2635167, "England", "ENG", 6269131, "London", 2643743, 51.5085, -0.1257, "Europe/London"},
	{"198.51.100.0/25", "DE", 2921044, "Land Berlin", "BE", 2950157, "Berlin", 2950159, 52.5244, 13.4105, "Europe/Berlin"},
	{"198.51.100.128/25", "FR", 3017382, "Île-de-France", "IDF", 3012874, "Paris", 2988507, 48.8534, 2.3488, "Europe/Paris"},
	{"203.0.113.0/25", "JP", 1861060, "Tokyo", "13", 1850144, "Tokyo", 1850147, 35.6895, 139.6917, "Asia/Tokyo"},
	{"203.0.113.128/25", "AU", 2077456, "New South Wales", "NSW", 2155400, "Sydney", 2147714, -33.8678, 151.2073, "Australia/Sydney"},
	{"2001:db8:1::/48", "GB", 2635167, "England", "ENG", 6269131, "London", 2643743, 51.5085, -0.1257, "Europe/London"},
	{"2001:db8:2::/48", "DE", 2921044, "Land Berlin", "BE", 2950157, "Berlin", 2950159, 52.5244, 13.4105, "Europe/Berlin"},
	{"2001:db8:3::/48", "US", 6252001, "California", "CA", 5332921, "San Francisco", 5391959, 37.7749, -122.4194, "America/Los_Angeles"},
	{"2001:db8:4::/48", "BR", 3469034, "São Paulo", "SP", 3448433, "São Paulo", 3448439, -23.5475, -46.6361, "America/Sao_Paulo"},
	// The lab's server LANs: their IPv6 prefixes locate like their IPv4 networks.
	{"2001:db8:a::/48", "DE", 2921044, "Land Berlin", "BE", 2950157, "Berlin", 2950159, 52.5244, 13.4105, "Europe/Berlin"},
	{"2001:db8:b::/48", "JP", 1861060, "Tokyo", "13", 1850144, "Tokyo", 1850147, 35.6895, 139.6917, "Asia/Tokyo"},
	{network: "2001:db8:f000::/36", country: "NL", countryID: 2750405},
}

var systems = []as{
	{"192.0.2.0/24", 64500, "V6Matrix Lab Transit GB"},
	{"198.51.100.0/25", 64501, "V6Matrix Lab Berlin Hosting"},
	{"198.51.100.128/25", 64502, "V6Matrix Lab Paris Telecom"},
	{"203.0.113.0/25", 64503, "V6Matrix Lab Tokyo Net"},
	// 203.0.113.128/25 has no ASN record on purpose.
	{"2001:db8:1::/48", 64500, "V6Matrix Lab Transit GB"},
	{"2001:db8:2::/48", 64501, "V6Matrix Lab Berlin Hosting"},
	{"2001:db8:3::/48", 65550, "V6Matrix Lab SF Cloud"},
	{"2001:db8:4::/48", 64504, "Rede Lab São Paulo"},
	{"2001:db8:a::/48", 64501, "V6Matrix Lab Berlin Hosting"},
	{"2001:db8:b::/48", 64503, "V6Matrix Lab Tokyo Net"},
	{"2001:db8:f000::/36", 64511, "V6Matrix Lab NL Exchange"},
}

// buildEpoch is fixed so the output is reproducible (2025-01-01T00:00:00Z).
const buildEpoch = 1735689600

func names(en string) mmdbtype.Map { return mmdbtype.Map{"en": mmdbtype.String(en)} }

func (p place) record() mmdbtype.Map {
	m := mmdbtype.Map{
		"country": mmdbtype.Map{
			"geoname_id": mmdbtype.Uint32(p.countryID),
			"iso_code":   mmdbtype.String(p.country),
		},
	}
	if p.city == "" {
		return m
	}
	m["city"] = mmdbtype.Map{"geoname_id": mmdbtype.Uint32(p.cityID), "names": names(p.city)}
	m["subdivisions"] = mmdbtype.Slice{mmdbtype.Map{
		"geoname_id": mmdbtype.Uint32(p.regionID),
		"iso_code":   mmdbtype.String(p.regionISO),
		"names":      names(p.region),
	}}
	m["location"] = mmdbtype.Map{
		"accuracy_radius": mmdbtype.Uint16(20),
		"latitude":        mmdbtype.Float64(p.lat),
		"longitude":       mmdbtype.Float64(p.lon),
		"time_zone":       mmdbtype.String(p.timeZone),
	}
	return m
}

func write(path, dbType string, insert func(*mmdbwriter.Tree) error) error {
	tree, err := mmdbwriter.New(mmdbwriter.Options{
		BuildEpoch:              buildEpoch,
		DatabaseType:            dbType,
		Description:             map[string]string{"en": "v6matrix test fixture (lab ranges only)"},
		IncludeReservedNetworks: true, // the lab lives in documentation space
		Languages:               []string{"en"},
		RecordSize:              24,
	})
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := insert(tree); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := tree.WriteTo(f); err != nil {
		_ = f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	return f.Close()
}

func insert(tree *mmdbwriter.Tree, network string, rec mmdbtype.Map) error {
	_, n, err := net.ParseCIDR(network)
	if err != nil {
		return err
	}
	if err := tree.Insert(n, rec); err != nil {
		return fmt.Errorf("insert %s: %w", network, err)
	}
	return nil
}

func main() {
	dir := flag.String("dir", "internal/geoip/testdata", "output directory")
	flag.Parse()
	err := write(filepath.Join(*dir, "v6matrix-test-city.mmdb"), "GeoLite2-City", func(t *mmdbwriter.Tree) error {
		for _, p := range places {
			if err := insert(t, p.network, p.record()); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		err = write(filepath.Join(*dir, "v6matrix-test-asn.mmdb"), "GeoLite2-ASN", func(t *mmdbwriter.Tree) error {
			for _, s := range systems {
				rec := mmdbtype.Map{
					"autonomous_system_number":       mmdbtype.Uint32(s.number),
					"autonomous_system_organization": mmdbtype.String(s.org),
				}
				if err := insert(t, s.network, rec); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

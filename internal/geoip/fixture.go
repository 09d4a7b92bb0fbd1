package geoip

import (
	"bytes"
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
)

// The test fixtures (testdata/README.md lists their networks and values),
// embedded so the lab and the demo get countries, cities and ASNs without
// shipping database files.
var (
	//go:embed testdata/v6matrix-test-city.mmdb
	fixtureCity []byte
	//go:embed testdata/v6matrix-test-asn.mmdb
	fixtureASN []byte
)

// Fixture file names, as WriteFixtures writes them.
const (
	FixtureCityFile = "v6matrix-test-city.mmdb"
	FixtureASNFile  = "v6matrix-test-asn.mmdb"
)

// FixtureCity returns a copy of the City test database.
func FixtureCity() []byte { return bytes.Clone(fixtureCity) }

// FixtureASN returns a copy of the ASN test database.
func FixtureASN() []byte { return bytes.Clone(fixtureASN) }

// OpenFixtures opens the embedded test databases.
func OpenFixtures() (*DB, error) { return OpenBytes(FixtureCity(), FixtureASN()) }

// WriteFixtures writes the test databases into dir (which must exist) and
// returns their paths, for --geoip-city and --geoip-asn.
func WriteFixtures(dir string) (cityPath, asnPath string, err error) {
	cityPath = filepath.Join(dir, FixtureCityFile)
	asnPath = filepath.Join(dir, FixtureASNFile)
	if err := os.WriteFile(cityPath, fixtureCity, 0o644); err != nil {
		return "", "", fmt.Errorf("geoip: write fixture: %w", err)
	}
	if err := os.WriteFile(asnPath, fixtureASN, 0o644); err != nil {
		return "", "", fmt.Errorf("geoip: write fixture: %w", err)
	}
	return cityPath, asnPath, nil
}

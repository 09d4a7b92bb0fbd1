// Package geoip looks addresses up in MaxMind DB (.mmdb) files: a City
// database (GeoLite2-City, GeoIP2-City, DB-IP lite City) for the country,
// region, city and coordinates, and an ASN database (GeoLite2-ASN, DB-IP
// lite ASN) for the autonomous system. These layouts share field names
// (city.names.en, subdivisions[0].names.en, country.iso_code,
// location.latitude/longitude, autonomous_system_number/organization), so
// either file may come from either vendor; both are optional.
//
// A database that cannot be used is reported once, when it is opened;
// OpenOrWarn turns that into a warning and a DB that answers with empty
// records, so a crawl goes on without GeoIP.
package geoip

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/netip"

	"github.com/oschwald/maxminddb-golang/v2"
)

// Record is what the databases say about one address. Fields a database did
// not give are nil or "": not measured, as distinct from zero.
type Record struct {
	ASN         *uint32  // autonomous system number (ASN database)
	ASOrg       string   // autonomous system organization (ASN database)
	City        string   // English city name
	Region      string   // English name of the first (largest) subdivision
	CountryCode string   // ISO 3166-1 alpha-2 country code
	Lon         *float64 // longitude, decimal degrees, east positive
	Lat         *float64 // latitude, decimal degrees, north positive
}

// mmdbRecord is the union of the City and ASN layouts; each database fills
// its part.
type mmdbRecord struct {
	City struct {
		Names struct {
			En string `maxminddb:"en"`
		} `maxminddb:"names"`
	} `maxminddb:"city"`
	Subdivisions []struct {
		Names struct {
			En string `maxminddb:"en"`
		} `maxminddb:"names"`
	} `maxminddb:"subdivisions"`
	Country struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"country"`
	Location struct {
		Latitude  *float64 `maxminddb:"latitude"`
		Longitude *float64 `maxminddb:"longitude"`
	} `maxminddb:"location"`
	ASN   *uint32 `maxminddb:"autonomous_system_number"`
	ASOrg string  `maxminddb:"autonomous_system_organization"`
}

// DB holds the open databases. The zero DB and a nil *DB answer every
// lookup with an empty Record. A DB is safe for concurrent use.
type DB struct {
	city, asn *maxminddb.Reader
	logger    *slog.Logger
}

// Open opens the City database at cityPath and the ASN database at asnPath;
// an empty path means that database is not used. A missing, unreadable or
// corrupt file gives an error naming it, and nothing stays open.
func Open(cityPath, asnPath string) (*DB, error) {
	city, err := openReader("city", cityPath)
	if err != nil {
		return nil, err
	}
	asn, err := openReader("ASN", asnPath)
	if err != nil {
		if city != nil {
			_ = city.Close()
		}
		return nil, err
	}
	return &DB{city: city, asn: asn}, nil
}

// OpenOrWarn opens each database like Open, but logs a warning for a
// database that cannot be used and goes on without it (the GeoIP columns of
// that database stay empty). It never returns nil. Lookup errors are logged
// to logger too; a nil logger means slog.Default().
func OpenOrWarn(logger *slog.Logger, cityPath, asnPath string) *DB {
	if logger == nil {
		logger = slog.Default()
	}
	d := &DB{logger: logger}
	var err error
	if d.city, err = openReader("city", cityPath); err != nil {
		logger.Warn("GeoIP city data disabled", "err", err)
	}
	if d.asn, err = openReader("ASN", asnPath); err != nil {
		logger.Warn("GeoIP ASN data disabled", "err", err)
	}
	return d
}

// OpenBytes is Open for databases held in memory (such as FixtureCity and
// FixtureASN); a nil slice means that database is not used.
func OpenBytes(city, asn []byte) (*DB, error) {
	d := &DB{}
	for _, x := range []struct {
		kind string
		data []byte
		dst  **maxminddb.Reader
	}{{"city", city, &d.city}, {"ASN", asn, &d.asn}} {
		if x.data == nil {
			continue
		}
		r, err := maxminddb.OpenBytes(x.data)
		if err == nil {
			err = r.Verify()
		}
		if err != nil {
			_ = d.Close()
			return nil, fmt.Errorf("geoip: %s database (in memory): %w", x.kind, err)
		}
		*x.dst = r
	}
	return d, nil
}

func openReader(kind, path string) (*maxminddb.Reader, error) {
	if path == "" {
		return nil, nil
	}
	r, err := maxminddb.Open(path)
	if err == nil {
		if err = r.Verify(); err != nil {
			_ = r.Close()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("geoip: %s database %s: %w", kind, path, err)
	}
	return r, nil
}

// Close releases the databases.
func (d *DB) Close() error {
	if d == nil {
		return nil
	}
	var errs []error
	for _, r := range []**maxminddb.Reader{&d.city, &d.asn} {
		if *r != nil {
			errs = append(errs, (*r).Close())
			*r = nil
		}
	}
	return errors.Join(errs...)
}

// Lookup returns what the databases say about a. An address no network of a
// database contains leaves that database's fields empty. IPv4 addresses are
// looked up in the IPv4 part of the databases; IPv4-mapped IPv6 addresses
// (::ffff:a.b.c.d) are looked up as given, which databases built with
// IPv4 aliasing (MaxMind's and the fixtures) answer like the IPv4 address.
func (d *DB) Lookup(a netip.Addr) Record {
	var rec Record
	if d == nil || !a.IsValid() {
		return rec
	}
	// An IPv4-mapped address is looked up as the IPv4 address it carries.
	a = a.WithZone("").Unmap()
	if m, ok := d.lookup(d.city, a); ok {
		rec.City, rec.CountryCode = m.City.Names.En, m.Country.ISOCode
		if len(m.Subdivisions) > 0 {
			rec.Region = m.Subdivisions[0].Names.En
		}
		if validCoord(m.Location.Latitude, 90) && validCoord(m.Location.Longitude, 180) {
			rec.Lat, rec.Lon = m.Location.Latitude, m.Location.Longitude
		}
	}
	if m, ok := d.lookup(d.asn, a); ok {
		rec.ASN, rec.ASOrg = m.ASN, m.ASOrg
	}
	return rec
}

// validCoord reports whether a coordinate is present, finite and within ±limit degrees:
// a damaged or hostile database must not put NaN or 1000° into the records.
func validCoord(v *float64, limit float64) bool {
	return v != nil && !math.IsNaN(*v) && *v >= -limit && *v <= limit
}

func (d *DB) lookup(r *maxminddb.Reader, a netip.Addr) (mmdbRecord, bool) {
	var m mmdbRecord
	if r == nil || a.Is6() && r.Metadata.IPVersion == 4 {
		return m, false
	}
	res := r.Lookup(a)
	if !res.Found() {
		if err := res.Err(); err != nil {
			d.logError(r, a, err)
		}
		return m, false
	}
	if err := res.Decode(&m); err != nil {
		d.logError(r, a, err)
		return mmdbRecord{}, false
	}
	return m, true
}

func (d *DB) logError(r *maxminddb.Reader, a netip.Addr, err error) {
	if d.logger != nil {
		d.logger.Warn("GeoIP lookup failed", "db", r.Metadata.DatabaseType, "addr", a, "err", err)
	}
}

package geoip

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/oschwald/maxminddb-golang/v2"
)

// The sources `v6matrix geoip update` knows. DB-IP Lite is free without an account
// (CC BY 4.0: the website credits it); MaxMind GeoLite2 needs an account and a licence key.
const (
	SourceDBIP    = "dbip"
	SourceMaxMind = "maxmind"
)

// Default download locations; UpdateConfig.BaseURL replaces them (a mirror, or a test
// server).
const (
	DBIPBaseURL    = "https://download.db-ip.com/free"
	MaxMindBaseURL = "https://download.maxmind.com/geoip/databases"
)

// The installed files' names, whatever the source: a crawl finds them in the GeoIP
// directory without being told (DefaultPaths).
const (
	CityFile = "city.mmdb"
	ASNFile  = "asn.mmdb"
)

// MaxDownload bounds one download, compressed or not (DB-IP Lite City is ~130 MB).
const MaxDownload = 1 << 30

// UpdateConfig says where to fetch the databases and where to install them.
type UpdateConfig struct {
	Dir    string // installs CityFile and ASNFile here (created if missing)
	Source string // SourceDBIP (default) or SourceMaxMind
	// BaseURL replaces the source's default location (DBIPBaseURL, MaxMindBaseURL).
	BaseURL string
	// AccountID and LicenseKey authenticate MaxMind downloads.
	AccountID, LicenseKey string
	Client                *http.Client // nil: a client with a 10-minute timeout
	Now                   func() time.Time
	Logger                *slog.Logger
}

// Installed describes one database after an update.
type Installed struct {
	Kind    string    `json:"kind"` // city or asn
	Path    string    `json:"path"`
	URL     string    `json:"url"`
	SHA256  string    `json:"sha256"` // of the installed .mmdb
	Type    string    `json:"database_type"`
	Built   time.Time `json:"built"` // the database's build time (its metadata)
	Fetched time.Time `json:"fetched"`
	Changed bool      `json:"-"` // false: the file already held these bytes
}

// edition is one database of a source.
type edition struct {
	kind, file string
	dbType     string // what the database's metadata type must contain
	urls       func(c UpdateConfig, now time.Time) []string
	mmdbIn     func(body []byte) ([]byte, error) // the .mmdb inside a download
}

func editions(c UpdateConfig) ([]edition, error) {
	switch c.Source {
	case "", SourceDBIP:
		dbip := func(name string) func(UpdateConfig, time.Time) []string {
			// Published monthly, early in the month: this month's, else last month's.
			return func(c UpdateConfig, now time.Time) []string {
				this := now.UTC()
				last := time.Date(this.Year(), this.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, -1, 0)
				return []string{fmt.Sprintf("%s/dbip-%s-lite-%s.mmdb.gz", c.BaseURL, name, this.Format("2006-01")),
					fmt.Sprintf("%s/dbip-%s-lite-%s.mmdb.gz", c.BaseURL, name, last.Format("2006-01"))}
			}
		}
		return []edition{
			{kind: "city", file: CityFile, dbType: "City", urls: dbip("city"), mmdbIn: gunzip},
			{kind: "asn", file: ASNFile, dbType: "ASN", urls: dbip("asn"), mmdbIn: gunzip},
		}, nil
	case SourceMaxMind:
		if c.AccountID == "" || c.LicenseKey == "" {
			return nil, errors.New("geoip update: MaxMind needs an account ID and a licence key (--maxmind-account, and --maxmind-license-key or MAXMIND_LICENSE_KEY)")
		}
		mm := func(name string) func(UpdateConfig, time.Time) []string {
			return func(c UpdateConfig, _ time.Time) []string {
				return []string{fmt.Sprintf("%s/%s/download?suffix=tar.gz", c.BaseURL, name)}
			}
		}
		return []edition{
			{kind: "city", file: CityFile, dbType: "City", urls: mm("GeoLite2-City"), mmdbIn: mmdbFromTarGz},
			{kind: "asn", file: ASNFile, dbType: "ASN", urls: mm("GeoLite2-ASN"), mmdbIn: mmdbFromTarGz},
		}, nil
	}
	return nil, fmt.Errorf("geoip update: unknown source %q (want %s or %s)", c.Source, SourceDBIP, SourceMaxMind)
}

// Update downloads the City and ASN databases of the configured source, checks each
// (a MaxMind DB of the right type that verifies, and the published SHA-256 where the
// source gives one) and installs it atomically over the previous file, which stays
// in place when anything fails. A sidecar file (<name>.json) records where and when
// each came from.
func Update(ctx context.Context, c UpdateConfig) ([]Installed, error) {
	if c.Dir == "" {
		return nil, errors.New("geoip update: no directory")
	}
	if c.BaseURL == "" {
		c.BaseURL = DBIPBaseURL
		if c.Source == SourceMaxMind {
			c.BaseURL = MaxMindBaseURL
		}
	}
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	if c.Client == nil {
		c.Client = &http.Client{Timeout: 10 * time.Minute}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	eds, err := editions(c)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("geoip update: %w", err)
	}
	var out []Installed
	for _, ed := range eds {
		inst, err := c.install(ctx, ed)
		if err != nil {
			return out, err
		}
		out = append(out, inst)
	}
	return out, nil
}

// install fetches one edition from the first of its URLs that has it.
func (c UpdateConfig) install(ctx context.Context, ed edition) (Installed, error) {
	var body []byte
	var from string
	var errs []error
	for _, u := range ed.urls(c, c.Now()) {
		b, err := c.get(ctx, u)
		if err == nil {
			body, from = b, u
			break
		}
		errs = append(errs, err)
		if !errors.Is(err, errNotPublished) {
			break
		}
	}
	if body == nil {
		return Installed{}, fmt.Errorf("geoip update: %s database: %w", ed.kind, errors.Join(errs...))
	}
	if c.Source == SourceMaxMind {
		if err := c.checkSHA256(ctx, from, body); err != nil {
			return Installed{}, fmt.Errorf("geoip update: %s: %w", redact(from), err)
		}
	}
	mmdb, err := ed.mmdbIn(body)
	if err != nil {
		return Installed{}, fmt.Errorf("geoip update: %s: %w", redact(from), err)
	}
	r, err := maxminddb.OpenBytes(mmdb)
	if err == nil {
		err = r.Verify()
	}
	if err != nil {
		return Installed{}, fmt.Errorf("geoip update: %s: not a usable MaxMind DB: %w", redact(from), err)
	}
	meta := r.Metadata
	if !strings.Contains(meta.DatabaseType, ed.dbType) {
		return Installed{}, fmt.Errorf("geoip update: %s: database type %q, want a %s database", redact(from), meta.DatabaseType, ed.dbType)
	}
	sum := sha256.Sum256(mmdb)
	inst := Installed{Kind: ed.kind, Path: filepath.Join(c.Dir, ed.file), URL: redact(from), SHA256: hex.EncodeToString(sum[:]),
		Type: meta.DatabaseType, Built: time.Unix(int64(meta.BuildEpoch), 0).UTC(), Fetched: c.Now().UTC()}
	if old, err := os.ReadFile(inst.Path); err == nil && bytes.Equal(old, mmdb) {
		c.Logger.Info("GeoIP database unchanged", "kind", ed.kind, "path", inst.Path, "url", inst.URL)
		return inst, nil
	}
	if err := writeAtomic(inst.Path, mmdb); err != nil {
		return Installed{}, fmt.Errorf("geoip update: %w", err)
	}
	side, _ := json.MarshalIndent(inst, "", "  ")
	if err := writeAtomic(inst.Path+".json", append(side, '\n')); err != nil {
		return Installed{}, fmt.Errorf("geoip update: %w", err)
	}
	inst.Changed = true
	c.Logger.Info("GeoIP database installed", "kind", ed.kind, "path", inst.Path, "url", inst.URL, "type", inst.Type, "built", inst.Built.Format(time.DateOnly), "bytes", len(mmdb))
	return inst, nil
}

// errNotPublished is a 404: DB-IP's file of this month may not be out yet.
var errNotPublished = errors.New("not published")

func (c UpdateConfig) get(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", "v6matrix-geoip-update")
	if c.Source == SourceMaxMind {
		req.SetBasicAuth(c.AccountID, c.LicenseKey)
	}
	resp, err := c.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", redact(url), err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, fmt.Errorf("%s: %w (HTTP 404)", redact(url), errNotPublished)
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return nil, fmt.Errorf("%s: %s: check the account ID and licence key", redact(url), resp.Status)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("%s: %s", redact(url), resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxDownload+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", redact(url), err)
	}
	if len(b) > MaxDownload {
		return nil, fmt.Errorf("%s: larger than %d bytes", redact(url), MaxDownload)
	}
	return b, nil
}

// checkSHA256 compares a MaxMind download with the checksum MaxMind publishes beside it
// ("<hex>  <file name>").
func (c UpdateConfig) checkSHA256(ctx context.Context, url string, body []byte) error {
	b, err := c.get(ctx, url+".sha256")
	if err != nil {
		return fmt.Errorf("its SHA-256: %w", err)
	}
	want, _, _ := strings.Cut(strings.TrimSpace(string(b)), " ")
	sum := sha256.Sum256(body)
	if got := hex.EncodeToString(sum[:]); !strings.EqualFold(got, want) {
		return fmt.Errorf("SHA-256 %s, but the published one is %q: download damaged", got, want)
	}
	return nil
}

func gunzip(body []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("not gzip: %w", err)
	}
	b, err := io.ReadAll(io.LimitReader(zr, MaxDownload+1))
	if err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	if len(b) > MaxDownload {
		return nil, fmt.Errorf("uncompressed larger than %d bytes", MaxDownload)
	}
	return b, nil
}

// mmdbFromTarGz returns the one .mmdb file of a MaxMind tar.gz.
func mmdbFromTarGz(body []byte) ([]byte, error) {
	tarball, err := gunzip(body)
	if err != nil {
		return nil, err
	}
	tr := tar.NewReader(bytes.NewReader(tarball))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil, errors.New("no .mmdb file in the archive")
		}
		if err != nil {
			return nil, fmt.Errorf("tar: %w", err)
		}
		if h.Typeflag == tar.TypeReg && strings.HasSuffix(h.Name, ".mmdb") {
			return io.ReadAll(tr)
		}
	}
}

// writeAtomic replaces path with data: a reader sees the old file or the new one.
func writeAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	w := bufio.NewWriter(tmp)
	if _, err := w.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// redact drops a URL's query and credentials from messages (a licence key never
// reaches a log).
func redact(u string) string {
	if i := strings.IndexByte(u, '?'); i >= 0 {
		u = u[:i]
	}
	return u
}

// DefaultDir is where `geoip update` installs the databases and a crawl looks for them:
// $V6MATRIX_GEOIP_DIR if set, else /var/lib/v6matrix/geoip for root, else the user's
// data directory.
func DefaultDir() string {
	if d := os.Getenv("V6MATRIX_GEOIP_DIR"); d != "" {
		return d
	}
	if os.Geteuid() == 0 {
		return "/var/lib/v6matrix/geoip"
	}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "v6matrix", "geoip")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "share", "v6matrix", "geoip")
	}
	return "geoip"
}

// DefaultPaths returns the databases `geoip update` installed in dir, "" for one that is
// not there.
func DefaultPaths(dir string) (city, asn string) {
	for _, x := range []struct {
		name string
		dst  *string
	}{{CityFile, &city}, {ASNFile, &asn}} {
		p := filepath.Join(dir, x.name)
		if _, err := os.Stat(p); err == nil {
			*x.dst = p
		}
	}
	return city, asn
}

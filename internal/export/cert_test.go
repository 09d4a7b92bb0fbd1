package export

import (
	"testing"
	"time"

	"github.com/v6matrix/v6matrix/internal/probe/tlsprobe"
	"github.com/v6matrix/v6matrix/internal/result"
)

// TestCertPerHost: two web hosts share an address, probed once with the first's name
// (SNI) under a certificate that covers only it: tls.csv and domains.jsonl say
// cert_valid for the first and not for the second, whose name was never in the
// certificate (RECORDS.md: "chain and name verified").
func TestCertPerHost(t *testing.T) {
	yes := true
	expiry := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	r := &tlsprobe.Result{Port: 443, Reachable: true, Version: "TLS1.3", CertValid: &yes, CertExpiry: &expiry,
		ServerName: "www.a.example", ChainValid: &yes, CertNames: []string{"www.a.example"}}
	a := &result.Address{TLS443: r}
	for host, want := range map[string]string{"www.a.example": "1", "www.b.example": "0"} {
		if valid, _ := certCells(r, host); valid != want {
			t.Errorf("tls.csv cert_valid of %s: %q, want %q", host, valid, want)
		}
		doc := probeJSON(result.RoleWWW, host, a)
		if doc.TLS == nil || doc.TLS.CertValid == nil || boolCell(*doc.TLS.CertValid) != want {
			t.Errorf("domains.jsonl tls.cert_valid of %s: %+v, want %s", host, doc.TLS, want)
		}
	}
}

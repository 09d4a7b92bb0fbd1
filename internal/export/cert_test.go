package export

import (
	"testing"
	"time"

	"github.com/v6matrix/v6matrix/internal/probe/tlsprobe"
	"github.com/v6matrix/v6matrix/internal/result"
)

// TestCertPerHost: three web hosts share an address, probed once with the first's name
// (SNI) under a certificate that covers it and the second: tls.csv and domains.jsonl
// say cert_valid for both, and leave it empty (not measured) for the third, whose name
// the server was not asked (RECORDS.md: "chain and name verified"); the JSON names the
// name asked (sni).
func TestCertPerHost(t *testing.T) {
	yes := true
	expiry := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	r := &tlsprobe.Result{Port: 443, Reachable: true, Version: "TLS1.3", CertValid: &yes, CertExpiry: &expiry,
		ServerName: "www.a.example", ChainValid: &yes, CertNames: []string{"www.a.example", "*.b.example"}}
	a := &result.Address{TLS443: r}
	for host, want := range map[string]string{"www.a.example": "1", "www.b.example": "1", "www.c.example": ""} {
		if valid, _ := certCells(r, host); valid != want {
			t.Errorf("tls.csv cert_valid of %s: %q, want %q", host, valid, want)
		}
		doc := probeJSON(result.RoleWWW, host, a)
		got := ""
		if doc.TLS != nil && doc.TLS.CertValid != nil {
			got = boolCell(*doc.TLS.CertValid)
		}
		if doc.TLS == nil || got != want || doc.TLS.SNI != "www.a.example" {
			t.Errorf("domains.jsonl tls of %s: %+v, want cert_valid %q and sni www.a.example", host, doc.TLS, want)
		}
	}
}

package export

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func decodeJSON(t *testing.T, s string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("%v in %s", err, s)
	}
	return v
}

// wantHosts are the hosts of the test run's domains in domains.jsonl: each address
// carries what was measured and nothing else (tls, dns and ntp only for the role they
// are measured for).
const wantHosts = `{
"alpha.example": [
 {"role": "ns", "name": "ns1.alpha.example", "rank": 1, "status": "ok", "addresses": [
  {"ip": "192.0.2.53", "family": 4, "type": {"valid": true, "prefixid": "", "class": "native"},
   "ptr": "ns1.alpha.example", "ptr_status": "ok",
   "geo": {"asn": 64500, "as_org": "V6Matrix Lab Transit GB", "city": "London", "region": "England", "country": "GB", "lon": -0.1257, "lat": 51.5085},
   "ping": {"sent": 5, "received": 5, "min_ms": 0.1, "avg_ms": 0.2, "max_ms": 0.3, "std_ms": 0, "loss": 0},
   "dns": "authoritative", "soa_serial": 2025030101},
  {"ip": "2001:db8:1::53", "family": 6, "type": {"valid": true, "prefixid": "", "class": "native"},
   "ptr": "", "ptr_status": "ok",
   "geo": {"asn": 64500, "as_org": "V6Matrix Lab Transit GB", "city": "London", "region": "England", "country": "GB", "lon": -0.1257, "lat": 51.5085},
   "dns": "timeout"}]},
 {"role": "mx", "name": "mail.alpha.example", "rank": 10, "status": "ok", "addresses": [
  {"ip": "198.51.100.25", "family": 4, "type": {"valid": true, "prefixid": "", "class": "native"},
   "ptr": "mail.alpha.example", "ptr_status": "ok",
   "geo": {"asn": 64501, "as_org": "V6Matrix Lab Berlin Hosting", "city": "Berlin", "region": "Land Berlin", "country": "DE", "lon": 13.4105, "lat": 52.5244},
   "tcp": {"25": "open"},
   "tls": {"port": 25, "reachable": true, "starttls": false, "version": "none", "error": "STARTTLS not offered"}},
  {"ip": "2001:db8:2::25", "family": 6, "type": {"valid": true, "prefixid": "", "class": "native"},
   "geo": {"asn": 64501, "as_org": "V6Matrix Lab Berlin Hosting", "city": "Berlin", "region": "Land Berlin", "country": "DE", "lon": 13.4105, "lat": 52.5244},
   "tcp": {"25": "filtered"},
   "tls": {"port": 25, "reachable": true, "starttls": true, "version": "TLS1.3", "cipher": "TLS_AES_256_GCM_SHA384",
           "cert_valid": true, "cert_expiry": "2026-09-01T12:30:00Z"}},
  {"ip": "fd00::25", "family": 6, "type": {"valid": false, "prefixid": "", "class": "native"},
   "skipped": "special-purpose: unique local"}]},
 {"role": "www", "name": "www.alpha.example", "status": "ok", "cname": ["web.cdn.example"], "addresses": [
  {"ip": "192.0.2.80", "family": 4, "type": {"valid": true, "prefixid": "", "class": "native"},
   "ptr": "web-a.cdn.example", "ptr_status": "ok",
   "geo": {"asn": 64500, "as_org": "V6Matrix Lab Transit GB", "city": "London", "region": "England", "country": "GB", "lon": -0.1257, "lat": 51.5085},
   "ping": {"sent": 5, "received": 5, "min_ms": 1.2346, "avg_ms": 2.5, "max_ms": 4.0004, "std_ms": 0.98765, "loss": 0},
   "tcp": {"80": "open", "443": "open"},
   "tls": {"port": 443, "reachable": true, "version": "TLS1.3", "cipher": "TLS_AES_128_GCM_SHA256",
           "cert_valid": true, "cert_expiry": "2026-07-01T12:30:00Z"},
   "path": {"mtu": 1500, "hops": 3, "back": 3, "hops_list": ["192.0.2.1", "*", "192.0.2.80"], "reached": true, "reason": "reached"}},
  {"ip": "192.0.2.81", "family": 4, "type": {"valid": true, "prefixid": "", "class": "native"},
   "ptr_status": "timeout",
   "geo": {"asn": 64500, "as_org": "V6Matrix Lab Transit GB", "city": "London", "region": "England", "country": "GB", "lon": -0.1257, "lat": 51.5085},
   "ping": {"sent": 5, "received": 0, "loss": 100},
   "tcp": {"80": "closed", "443": "filtered"},
   "tls": {"port": 443, "reachable": false, "error": "connection timed out"},
   "path": {"mtu": 1500, "hops_list": ["192.0.2.1", "*", "*"], "reached": false, "reason": "max hops"}},
  {"ip": "2001:db8:1::80", "family": 6, "type": {"valid": true, "prefixid": "", "class": "native"},
   "ptr": "", "ptr_status": "nxdomain",
   "geo": {"asn": 64500, "as_org": "V6Matrix Lab Transit GB", "city": "London", "region": "England", "country": "GB", "lon": -0.1257, "lat": 51.5085},
   "ping": {"sent": 5, "received": 4, "min_ms": 10, "avg_ms": 12, "max_ms": 15.5, "std_ms": 2, "loss": 20},
   "tcp": {"80": "open", "443": "unreachable"},
   "tls": {"port": 443, "reachable": true, "version": "TLS1.2", "cipher": "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
           "cert_valid": false, "cert_expiry": "2025-07-01T12:30:00Z", "error": "x509: certificate has expired or is not yet valid"},
   "path": {"mtu": 1280, "hops": 4, "back": 5, "hops_list": ["2001:db8:1::1", "2001:db8:ffff::1", "*", "2001:db8:1::80"],
            "reached": true, "reason": "reached"}}]},
 {"role": "ntp", "name": "ntp.alpha.example", "status": "ok", "addresses": [
  {"ip": "203.0.113.200", "family": 4, "type": {"valid": true, "prefixid": "", "class": "native"},
   "geo": {"city": "Sydney", "region": "New South Wales", "country": "AU", "lon": 151.2073, "lat": -33.8678},
   "ntp": {"status": "ok", "stratum": 2, "offset_ms": 0.4, "rtt_ms": 1.5}},
  {"ip": "2001:db8:3::123", "family": 6, "type": {"valid": true, "prefixid": "", "class": "native"},
   "geo": {"asn": 65550, "as_org": "V6Matrix Lab SF Cloud", "city": "San Francisco", "region": "California", "country": "US", "lon": -122.4194, "lat": 37.7749},
   "ntp": {"status": "timeout"}}]}
],
"beta.example": [
 {"role": "www", "name": "www.beta.example", "status": "nodata", "addresses": []}
]}`

// hostsByDomain maps each domain of domains.jsonl to its hosts.
func hostsByDomain(t *testing.T, dir string) map[string]any {
	t.Helper()
	out := map[string]any{}
	for _, d := range jsonLines(t, dir) {
		out[d["domain"].(string)] = d["hosts"]
	}
	return out
}

func TestJSONLinesMeasurements(t *testing.T) {
	dir, _ := exportMeasured(t, measurements(t))
	if diff := cmp.Diff(decodeJSON(t, wantHosts), any(hostsByDomain(t, dir))); diff != "" {
		t.Errorf("domains.jsonl hosts (-want +got):\n%s", diff)
	}
}

// TestJSONLinesUnmeasured checks that a run without a probe stage shows no measurement
// field at all, not zeros.
func TestJSONLinesUnmeasured(t *testing.T) {
	dir, _ := exportMeasured(t, nil)
	hosts := hostsByDomain(t, dir)
	n := 0
	for domain, hs := range hosts {
		for _, h := range hs.([]any) {
			for _, a := range h.(map[string]any)["addresses"].([]any) {
				var keys []string
				for k := range a.(map[string]any) {
					keys = append(keys, k)
				}
				slices.Sort(keys)
				if diff := cmp.Diff([]string{"family", "ip", "type"}, keys); diff != "" {
					t.Errorf("%s: address %v keys (-want +got):\n%s", domain, a, diff)
				}
				n++
			}
		}
	}
	if n != 10 {
		t.Errorf("%d addresses in domains.jsonl, want 10", n)
	}
}

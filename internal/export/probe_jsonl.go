package export

import (
	"strconv"

	"github.com/v6matrix/v6matrix/internal/probe/dns53"
	"github.com/v6matrix/v6matrix/internal/probe/httpprobe"
	"github.com/v6matrix/v6matrix/internal/probe/ntpprobe"
	"github.com/v6matrix/v6matrix/internal/probe/ptr"
	"github.com/v6matrix/v6matrix/internal/probe/tcpport"
	"github.com/v6matrix/v6matrix/internal/result"
)

// The JSON Lines shapes of an address's measurements (RECORDS.md). Every field is a
// pointer, a map or omitempty: what was not measured is absent.
type (
	probeDocs struct {
		// Skipped says why the address was not probed.
		Skipped string `json:"skipped,omitempty"`
		// PTR is the first PTR name; "" when the lookup answered without one, absent
		// when it did not run or did not answer (PTRStatus says which).
		PTR       *string                  `json:"ptr,omitempty"`
		PTRStatus ptr.Status               `json:"ptr_status,omitempty"`
		Geo       *geoDoc                  `json:"geo,omitempty"`
		Ping      *pingDoc                 `json:"ping,omitempty"`
		TCP       map[string]tcpport.State `json:"tcp,omitempty"`
		TLS       *tlsDoc                  `json:"tls,omitempty"`
		Path      *pathDoc                 `json:"path,omitempty"`
		DNS       dns53.Status             `json:"dns,omitempty"`
		// SOASerial is the serial this name server address answered for the domain.
		SOASerial *uint32 `json:"soa_serial,omitempty"`
		NTP       *ntpDoc `json:"ntp,omitempty"`
		// HTTP is the answer to GET / on port 80 (www hosts; a v6matrix addition).
		HTTP *httpDoc `json:"http,omitempty"`
	}
	httpDoc struct {
		Status   httpprobe.Status `json:"status"`
		Code     *int             `json:"code,omitempty"`
		Server   string           `json:"server,omitempty"`
		Location string           `json:"location,omitempty"`
		Detail   string           `json:"detail,omitempty"`
	}
	geoDoc struct {
		ASN     *uint32  `json:"asn,omitempty"`
		ASOrg   string   `json:"as_org,omitempty"`
		City    string   `json:"city,omitempty"`
		Region  string   `json:"region,omitempty"`
		Country string   `json:"country,omitempty"`
		Lon     *float64 `json:"lon,omitempty"`
		Lat     *float64 `json:"lat,omitempty"`
	}
	pingDoc struct {
		Sent       int      `json:"sent"`
		Received   int      `json:"received"`
		SendErrors int      `json:"send_errors,omitempty"`
		MinMillis  *float64 `json:"min_ms,omitempty"`
		AvgMillis  *float64 `json:"avg_ms,omitempty"`
		MaxMillis  *float64 `json:"max_ms,omitempty"`
		StdMillis  *float64 `json:"std_ms,omitempty"`
		Loss       float64  `json:"loss"` // percent
	}
	tlsDoc struct {
		Port      uint16 `json:"port"`
		Reachable bool   `json:"reachable"`
		// StartTLS is whether EHLO offered STARTTLS (mx hosts only).
		StartTLS   *bool  `json:"starttls,omitempty"`
		Version    string `json:"version,omitempty"`
		Cipher     string `json:"cipher,omitempty"`
		CertValid  *bool  `json:"cert_valid,omitempty"`
		SNI        string `json:"sni,omitempty"`         // the name the probe asked (Result.ServerName)
		CertExpiry string `json:"cert_expiry,omitempty"` // RFC 3339, UTC
		// Error is why the connection, the handshake or the verification failed.
		Error string `json:"error,omitempty"`
	}
	pathDoc struct {
		MTU      int      `json:"mtu,omitempty"`
		Hops     int      `json:"hops,omitempty"`
		Back     int      `json:"back,omitempty"`
		HopsList []string `json:"hops_list,omitempty"`
		Reached  bool     `json:"reached"`
		Reason   string   `json:"reason,omitempty"`
	}
	ntpDoc struct {
		Status       ntpprobe.Status `json:"status"`
		Stratum      *int            `json:"stratum,omitempty"`
		OffsetMillis *float64        `json:"offset_ms,omitempty"`
		RTTMillis    *float64        `json:"rtt_ms,omitempty"`
		KissCode     string          `json:"kiss_code,omitempty"`
		Detail       string          `json:"detail,omitempty"`
	}
)

// probeJSON returns the measurements of an address of a host in a role: tls, dns and
// ntp only for the role they are measured for (www/mx, ns, ntp). The certificate is
// judged for host.
func probeJSON(role result.Role, host string, a *result.Address) probeDocs {
	doc := probeDocs{Skipped: a.Skipped}
	if r := a.PTR; r != nil {
		doc.PTRStatus = r.Status
		if r.Status == ptr.StatusOK || r.Status == ptr.StatusNXDomain {
			name := firstPTR(r)
			doc.PTR = &name
		}
	}
	if g := a.Geo; g != nil {
		doc.Geo = &geoDoc{ASN: g.ASN, ASOrg: g.ASOrg, City: g.City, Region: g.Region, Country: g.CountryCode,
			Lon: g.Lon, Lat: g.Lat}
	}
	if p := a.Ping; p != nil {
		doc.Ping = &pingDoc{Sent: p.Sent, Received: p.Received, SendErrors: p.SendErrors, MinMillis: p.MinMillis,
			AvgMillis: p.AvgMillis, MaxMillis: p.MaxMillis, StdMillis: p.StdMillis, Loss: p.LossPercent}
	}
	for _, port := range []int{25, 80, 443} {
		if t := a.TCP(port); t != nil {
			if doc.TCP == nil {
				doc.TCP = map[string]tcpport.State{}
			}
			doc.TCP[strconv.Itoa(port)] = t.State
		}
	}
	if t := tlsOf(role, a); t != nil {
		doc.TLS = &tlsDoc{Port: t.Port, Reachable: t.Reachable, StartTLS: t.StartTLSOffered, Version: t.Version,
			Cipher: t.Cipher, CertValid: t.ValidFor(host), SNI: t.ServerName,
			Error: firstNonEmpty(t.ConnectError, t.HandshakeError, t.VerifyError)}
		if t.CertExpiry != nil {
			doc.TLS.CertExpiry = rfc3339(*t.CertExpiry)
		}
	}
	if p := a.Path; p != nil {
		doc.Path = &pathDoc{MTU: p.PMTUBytes, Hops: p.Hops, Back: p.Back, HopsList: p.HopList, Reached: p.Reached,
			Reason: p.Reason}
	}
	if h := a.HTTP80; role == result.RoleWWW && h != nil {
		doc.HTTP = &httpDoc{Status: h.Status, Code: h.Code, Server: h.Server, Location: h.Location, Detail: h.Detail}
	}
	if n := a.NTP123; role == result.RoleNTP && n != nil {
		doc.NTP = &ntpDoc{Status: n.Status, Stratum: n.Stratum, OffsetMillis: n.OffsetMillis, RTTMillis: n.RTTMillis,
			KissCode: n.KissCode, Detail: n.Detail}
	}
	return doc
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

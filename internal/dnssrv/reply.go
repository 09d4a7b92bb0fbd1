package dnssrv

import (
	"net"

	"github.com/miekg/dns"
)

// ednsSize is the EDNS0 buffer size the servers of this package advertise.
const ednsSize = 1232

// isUDP reports whether w answers over UDP.
func isUDP(w dns.ResponseWriter) bool {
	_, ok := w.LocalAddr().(*net.UDPAddr)
	return ok
}

// clientSize returns the largest UDP reply the client of req accepts.
func clientSize(req *dns.Msg) int {
	if opt := req.IsEdns0(); opt != nil && int(opt.UDPSize()) > dns.MinMsgSize {
		return int(opt.UDPSize())
	}
	return dns.MinMsgSize
}

// writeReply sends m, answering EDNS0 with EDNS0 and truncating UDP replies
// (TC set, records dropped) that exceed what the client accepts.
func writeReply(w dns.ResponseWriter, req, m *dns.Msg) {
	if req.IsEdns0() != nil {
		m.SetEdns0(ednsSize, false)
	}
	if isUDP(w) {
		m.Truncate(clientSize(req))
	}
	m.Compress = true
	_ = w.WriteMsg(m) // a client that went away is not our concern
}

// writeRcode sends an empty reply with rcode.
func writeRcode(w dns.ResponseWriter, req *dns.Msg, rcode int) {
	m := new(dns.Msg)
	m.SetRcode(req, rcode)
	writeReply(w, req, m)
}

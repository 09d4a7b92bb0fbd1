package labcrawl_test

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
)

// packet is what the capture check needs of one captured IP packet.
type packet struct {
	// Outgoing is true when the vantage sent the packet (Linux "cooked" packet type 4).
	Outgoing bool
	Src, Dst netip.Addr
	// Proto is the IP protocol of the transport header (6 TCP, 17 UDP, 1/58 ICMP).
	Proto uint8
	// SrcPort, DstPort are set for TCP and UDP (the first fragment only).
	SrcPort, DstPort uint16
	HasPorts         bool
	// ICMPType is the ICMP/ICMPv6 type.
	ICMPType uint8
}

// Link types tcpdump writes for "-i any".
const (
	linkTypeLinuxSLL  = 113
	linkTypeLinuxSLL2 = 276
	pktOutgoing       = 4
)

// readPcap parses a classic pcap file written by `tcpdump -i any -w`: every IPv4 and IPv6
// packet with its direction, addresses and ports. Other frames (ARP) are skipped.
func readPcap(file string) ([]packet, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read capture: %w", err)
	}
	if len(b) < 24 {
		return nil, fmt.Errorf("capture %s: %d bytes, no pcap header", file, len(b))
	}
	var bo binary.ByteOrder
	switch binary.LittleEndian.Uint32(b) {
	case 0xa1b2c3d4, 0xa1b23c4d:
		bo = binary.LittleEndian
	case 0xd4c3b2a1, 0x4d3cb2a1:
		bo = binary.BigEndian
	default:
		return nil, fmt.Errorf("capture %s: not a pcap file (magic %x)", file, b[:4])
	}
	linkType := bo.Uint32(b[20:])
	if linkType != linkTypeLinuxSLL && linkType != linkTypeLinuxSLL2 {
		return nil, fmt.Errorf("capture %s: link type %d, want Linux cooked (113 or 276)", file, linkType)
	}
	var out []packet
	for off := 24; off+16 <= len(b); {
		incl := int(bo.Uint32(b[off+8:]))
		data := b[off+16:]
		if incl > len(data) {
			break // a record cut short when tcpdump was stopped
		}
		data = data[:incl]
		off += 16 + incl
		var proto uint16
		var pktType uint8
		var payload []byte
		switch linkType {
		case linkTypeLinuxSLL:
			if len(data) < 16 {
				continue
			}
			pktType, proto, payload = uint8(binary.BigEndian.Uint16(data)), binary.BigEndian.Uint16(data[14:]), data[16:]
		default:
			if len(data) < 20 {
				continue
			}
			proto, pktType, payload = binary.BigEndian.Uint16(data), data[10], data[20:]
		}
		p, ok := parseIP(proto, payload)
		if !ok {
			continue
		}
		p.Outgoing = pktType == pktOutgoing
		out = append(out, p)
	}
	return out, nil
}

// parseIP decodes the IP and transport headers of an IPv4 (0x0800) or IPv6 (0x86dd) packet.
func parseIP(ethertype uint16, b []byte) (packet, bool) {
	var p packet
	var l4 []byte
	switch ethertype {
	case 0x0800:
		if len(b) < 20 || b[0]>>4 != 4 {
			return p, false
		}
		ihl := int(b[0]&0x0f) * 4
		if ihl < 20 || len(b) < ihl {
			return p, false
		}
		p.Src, p.Dst = netip.AddrFrom4([4]byte(b[12:16])), netip.AddrFrom4([4]byte(b[16:20]))
		p.Proto = b[9]
		if binary.BigEndian.Uint16(b[6:])&0x1fff != 0 {
			return p, true // a later fragment: no transport header
		}
		l4 = b[ihl:]
	case 0x86dd:
		if len(b) < 40 || b[0]>>4 != 6 {
			return p, false
		}
		p.Src, p.Dst = netip.AddrFrom16([16]byte(b[8:24])), netip.AddrFrom16([16]byte(b[24:40]))
		next, rest := b[6], b[40:]
		for {
			switch next {
			case 0, 43, 60: // hop-by-hop, routing, destination options
				if len(rest) < 8 {
					return p, false
				}
				n := (int(rest[1]) + 1) * 8
				if len(rest) < n {
					return p, false
				}
				next, rest = rest[0], rest[n:]
				continue
			case 44: // fragment
				if len(rest) < 8 {
					return p, false
				}
				frag := binary.BigEndian.Uint16(rest[2:]) &^ 7
				next, rest = rest[0], rest[8:]
				if frag != 0 {
					p.Proto = next
					return p, true
				}
				continue
			}
			break
		}
		p.Proto, l4 = next, rest
	default:
		return p, false
	}
	switch p.Proto {
	case 6, 17:
		if len(l4) >= 4 {
			p.SrcPort, p.DstPort, p.HasPorts = binary.BigEndian.Uint16(l4), binary.BigEndian.Uint16(l4[2:]), true
		}
	case 1, 58:
		if len(l4) >= 1 {
			p.ICMPType = l4[0]
		}
	}
	return p, true
}

package path

import (
	"encoding/binary"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// cmsg builds one control message as the kernel lays it out.
func cmsg(level, typ int, data []byte) []byte {
	b := make([]byte, unix.CmsgSpace(len(data)))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = int32(level), int32(typ)
	h.SetLen(unix.CmsgLen(len(data)))
	copy(b[unix.CmsgLen(0):], data)
	return b
}

// extendedErr is a struct sock_extended_err with an offender address after it.
func extendedErr(errno unix.Errno, icmpType, code uint8, info uint32, sa []byte) []byte {
	b := make([]byte, 16)
	binary.NativeEndian.PutUint32(b[0:], uint32(errno))
	b[4], b[5], b[6] = 2, icmpType, code // SO_EE_ORIGIN_ICMP
	binary.NativeEndian.PutUint32(b[8:], info)
	return append(b, sa...)
}

// FuzzParse feeds arbitrary payloads and control messages to the parser of what the
// path probe's socket receives (the quoted probe header and the ICMP extended error with
// its offender): no panic, and only sane values come out.
func FuzzParse(f *testing.F) {
	sa4 := make([]byte, 16)
	binary.NativeEndian.PutUint16(sa4, unix.AF_INET)
	copy(sa4[4:], []byte{192, 0, 2, 1})
	sa6 := make([]byte, 28)
	binary.NativeEndian.PutUint16(sa6, unix.AF_INET6)
	copy(sa6[8:], []byte{0x20, 0x01, 0x0d, 0xb8, 15: 1})
	ttl := make([]byte, 4)
	binary.NativeEndian.PutUint32(ttl, 61)
	payload := []byte{0, 0, 0, 3, 0, 0, 0, 9}
	f.Add(payload, append(cmsg(unix.SOL_IP, unix.IP_RECVERR, extendedErr(unix.EHOSTUNREACH, 11, 0, 0, sa4)), cmsg(unix.SOL_IP, unix.IP_TTL, ttl)...))
	f.Add(payload, cmsg(unix.SOL_IPV6, unix.IPV6_RECVERR, extendedErr(unix.EMSGSIZE, 2, 0, 1280, sa6)))
	f.Add([]byte{1, 2}, cmsg(unix.SOL_IPV6, unix.IPV6_HOPLIMIT, ttl[:2]))
	f.Add([]byte{}, []byte{0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, payload, oob []byte) {
		var s sock
		n := copy(s.buf[:], payload)
		oobn := copy(s.oob[:], oob)
		ev := s.parse(n, oobn)
		if ev.quoted != (ev.probeTTL >= 1) || ev.probeTTL > 255 || (!ev.quoted && ev.probeTTL != -1) {
			t.Fatalf("quoted %v with probe TTL %d", ev.quoted, ev.probeTTL)
		}
		if ev.offender.IsValid() && ev.offender.Is4In6() {
			t.Fatalf("offender %s left IPv4-mapped", ev.offender)
		}
		var none event
		parseExtendedErr(oob[:min(len(oob), 15)], &none)
		if none != (event{}) {
			t.Fatalf("a short extended error changed the event: %+v", none)
		}
	})
}

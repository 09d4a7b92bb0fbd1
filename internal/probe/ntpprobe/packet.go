package ntpprobe

import (
	"encoding/binary"
	"errors"
	"time"
)

// PacketBytes is the size of an NTP header without extensions or MAC (RFC 5905 §7.3).
const PacketBytes = 48

// Modes of RFC 5905 §7.3.
const (
	ModeClient = 3
	ModeServer = 4
)

// ntpEpochOffset is the number of seconds from 1900-01-01 (NTP era 0) to 1970-01-01.
const ntpEpochOffset = 2208988800

// Timestamp is a 64-bit NTP timestamp: seconds since 1900 (era 0) and a binary fraction.
type Timestamp uint64

// TimestampOf converts t to an NTP timestamp.
func TimestampOf(t time.Time) Timestamp {
	secs := uint64(t.Unix() + ntpEpochOffset)
	frac := (uint64(t.Nanosecond()) << 32) / 1e9
	return Timestamp(secs<<32 | frac)
}

// Time converts ts back to a time (era 0, i.e. until 2036; enough for replies to our own
// timestamps and for the era-0 arithmetic of offsets).
func (ts Timestamp) Time() time.Time {
	secs := int64(ts>>32) - ntpEpochOffset
	nsec := (int64(ts&0xffffffff) * 1e9) >> 32
	return time.Unix(secs, nsec)
}

// Packet is the NTP header (RFC 5905 §7.3) without extension fields.
type Packet struct {
	Leap, Version, Mode uint8
	Stratum             uint8
	Poll, Precision     int8
	RootDelay           uint32 // NTP short format
	RootDispersion      uint32 // NTP short format
	ReferenceID         [4]byte
	Reference           Timestamp
	Origin              Timestamp
	Receive             Timestamp
	Transmit            Timestamp
}

// Marshal encodes p into its 48-byte wire form.
func (p *Packet) Marshal() []byte {
	b := make([]byte, PacketBytes)
	b[0] = p.Leap<<6 | (p.Version&7)<<3 | p.Mode&7
	b[1] = p.Stratum
	b[2] = byte(p.Poll)
	b[3] = byte(p.Precision)
	binary.BigEndian.PutUint32(b[4:], p.RootDelay)
	binary.BigEndian.PutUint32(b[8:], p.RootDispersion)
	copy(b[12:16], p.ReferenceID[:])
	binary.BigEndian.PutUint64(b[16:], uint64(p.Reference))
	binary.BigEndian.PutUint64(b[24:], uint64(p.Origin))
	binary.BigEndian.PutUint64(b[32:], uint64(p.Receive))
	binary.BigEndian.PutUint64(b[40:], uint64(p.Transmit))
	return b
}

// ErrShortPacket is returned by Unmarshal for fewer than 48 bytes.
var ErrShortPacket = errors.New("ntp: packet shorter than 48 bytes")

// Unmarshal decodes the header of b; extension fields and a MAC after it are ignored.
func (p *Packet) Unmarshal(b []byte) error {
	if len(b) < PacketBytes {
		return ErrShortPacket
	}
	p.Leap, p.Version, p.Mode = b[0]>>6, (b[0]>>3)&7, b[0]&7
	p.Stratum = b[1]
	p.Poll, p.Precision = int8(b[2]), int8(b[3])
	p.RootDelay = binary.BigEndian.Uint32(b[4:])
	p.RootDispersion = binary.BigEndian.Uint32(b[8:])
	copy(p.ReferenceID[:], b[12:16])
	p.Reference = Timestamp(binary.BigEndian.Uint64(b[16:]))
	p.Origin = Timestamp(binary.BigEndian.Uint64(b[24:]))
	p.Receive = Timestamp(binary.BigEndian.Uint64(b[32:]))
	p.Transmit = Timestamp(binary.BigEndian.Uint64(b[40:]))
	return nil
}

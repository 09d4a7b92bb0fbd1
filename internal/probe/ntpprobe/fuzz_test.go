package ntpprobe

import (
	"bytes"
	"encoding/binary"
	"math"
	"testing"
	"time"
)

// FuzzEvaluate feeds arbitrary replies to the NTP packet parser and the reply check:
// no panic; a packet of 48 bytes or more encodes back to its header; a reply that does
// not echo our transmit timestamp is never matched; an ok result has finite, non-negative
// RTT, a stratum from 1 to 255 and a leap indicator from 0 to 3.
func FuzzEvaluate(f *testing.F) {
	t1 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	xmt := TimestampOf(t1)
	good := (&Packet{Leap: 0, Version: 4, Mode: ModeServer, Stratum: 2, Origin: xmt,
		Receive: TimestampOf(t1.Add(time.Millisecond)), Transmit: TimestampOf(t1.Add(2 * time.Millisecond))}).Marshal()
	f.Add(good)
	kod := bytes.Clone(good)
	kod[1] = 0
	copy(kod[12:], "RATE")
	f.Add(kod)
	f.Add(good[:47])
	f.Add(append(bytes.Clone(good), make([]byte, 20)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		var p Packet
		if err := p.Unmarshal(b); err == nil && !bytes.Equal(p.Marshal(), b[:PacketBytes]) {
			t.Fatalf("Marshal(Unmarshal(%x)) = %x", b[:PacketBytes], p.Marshal())
		}
		r, matched := evaluate(b, xmt, t1, t1.Add(5*time.Millisecond))
		if matched && (len(b) < PacketBytes || binary.BigEndian.Uint64(b[24:32]) != uint64(xmt)) {
			t.Fatalf("reply %x matched without echoing our transmit timestamp", b)
		}
		if r.Status == "" {
			t.Fatal("empty status")
		}
		if r.Status == StatusOK {
			if r.RTTMillis == nil || *r.RTTMillis < 0 || math.IsNaN(*r.RTTMillis) || math.IsInf(*r.RTTMillis, 0) ||
				r.OffsetMillis == nil || math.IsNaN(*r.OffsetMillis) {
				t.Fatalf("ok result with bad figures: %+v", r)
			}
			if *r.Stratum < 1 || *r.Stratum > 255 || *r.Leap < 0 || *r.Leap > 3 {
				t.Fatalf("ok result with stratum %d, leap %d", *r.Stratum, *r.Leap)
			}
		}
	})
}

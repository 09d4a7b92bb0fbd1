package path

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// tracepath's constants: the first probe is as large as UDP allows, so the
// kernel answers it with the local MTU (a local EMSGSIZE), and the header
// overhead is subtracted from the MTU to get the UDP payload size.
const (
	initialMTU4  = 65535
	initialMTU6  = 128000
	overhead4    = 28 // IPv4 + UDP headers
	overhead6    = 48 // IPv6 + UDP headers
	minMTU4      = 576
	minMTU6      = 1280
	sendAttempts = 10 // tracepath's MAX_PROBES: sends retried per probe
	maxRestarts  = 16 // bounds re-probing one TTL after MTU changes
)

// status is what one probe round learned, as tracepath's probe_ttl returns it.
type status int

const (
	noReply  status = iota // nothing came back
	progress               // an answer that lets the trace go on
	finished               // the trace is over (reached, unreachable, failed)
)

// run is the state of one trace: tracepath's run_state.
type run struct {
	t        *Tracer
	s        *sock
	addr     netip.Addr
	family   int
	mtu      int // current probe size including headers
	sentMTU  int // mtu of the last probe that went out
	overhead int
	ttl      int
	seq      uint32
	hops     []string // index ttl-1: responder or "*"
	hopsTo   int      // -1 until reached
	hopsFrom int      // -1 until measured
	reached  bool
	reason   string
	debug    bool // debug logging enabled: skip building log records otherwise
}

func (t *Tracer) trace(ctx context.Context, addr netip.Addr) (Result, error) {
	r := &run{t: t, addr: addr, family: 4, mtu: initialMTU4, overhead: overhead4, hopsTo: -1, hopsFrom: -1}
	if addr.Is6() {
		r.family, r.mtu, r.overhead = 6, initialMTU6, overhead6
	}
	r.debug = t.log.Enabled(ctx, slog.LevelDebug)
	s, err := openSocket(t.cfg, addr)
	if errors.Is(err, errNoRoute) {
		return Result{Family: r.family, Reason: ReasonNoRoute}, nil
	}
	if err != nil {
		return Result{Family: r.family}, fmt.Errorf("path %s: %w", addr, err)
	}
	defer s.close()
	defer s.cancelOnDone(ctx)()
	r.s = s
	if err := r.loop(ctx); err != nil {
		return r.result(), fmt.Errorf("path %s: %w", addr, err)
	}
	return r.result(), nil
}

// loop is tracepath's main loop: rising TTL, up to ProbesPerHop probes per TTL,
// and the same TTL probed again when its answer lowered the path MTU.
func (r *run) loop(ctx context.Context) error {
	cfg := r.t.cfg
	for ttl := 1; ttl <= cfg.MaxHops; ttl++ {
		r.ttl = ttl
		if err := r.s.setTTL(ttl); err != nil {
			return err
		}
		restarts := 0
		for i := 0; i < cfg.ProbesPerHop; i++ {
			st, err := r.probe(ctx)
			if err != nil {
				return err
			}
			if st == finished {
				return nil
			}
			// The answer was "too big" rather than the hop's: probe the
			// same TTL again at the new size (tracepath's restart).
			if r.mtu != r.sentMTU && restarts < maxRestarts {
				restarts++
				i = -1
				continue
			}
			if st == progress {
				break
			}
		}
		r.pad(ttl)
		if cfg.GapLimit > 0 && r.silentRun() >= cfg.GapLimit {
			r.reason = ReasonGapLimit
			return r.checkBlackHole(ctx)
		}
	}
	r.reason = ReasonMaxHops
	return r.checkBlackHole(ctx)
}

// silentRun counts the silent hops at the end of the hop list.
func (r *run) silentRun() int {
	n := 0
	for i := len(r.hops) - 1; i >= 0 && r.hops[i] == "*"; i-- {
		n++
	}
	return n
}

// probe is tracepath's probe_ttl: send one probe (retrying while the kernel
// refuses it and the error queue explains why), then wait for its answer.
func (r *run) probe(ctx context.Context) (status, error) {
	restarts := 0
	for i := 0; i < sendAttempts; i++ {
		if err := ctx.Err(); err != nil {
			return finished, err
		}
		r.seq++
		size := r.mtu - r.overhead
		err := r.s.send(ctx, r.ttl, r.seq, size, r.deadline(ctx))
		if r.debug {
			r.t.log.Debug("path: probe", "addr", r.addr, "ttl", r.ttl, "seq", r.seq, "bytes", r.mtu, "err", err)
		}
		if err == nil {
			r.sentMTU = r.mtu
			evs, err := r.s.wait(ctx, r.deadline(ctx))
			if err != nil {
				return finished, err
			}
			if err := ctx.Err(); err != nil {
				return finished, err
			}
			return r.handle(evs), nil
		}
		if !isSendRefusal(err) {
			return finished, fmt.Errorf("send: %w", err)
		}
		evs, err := r.s.drainNow()
		if err != nil {
			return finished, err
		}
		switch st := r.handle(evs); st {
		case finished:
			return st, nil
		case progress: // e.g. the local MTU learned: send again at once
			if restarts < maxRestarts {
				restarts++
				i = -1
			}
		}
	}
	r.reason = ReasonSendFailed
	return finished, nil
}

// isSendRefusal reports a send the kernel refused (an errno the error queue
// or a retry resolves; tracepath retries any failed sendto) or that found the
// send buffer full until the deadline.
func isSendRefusal(err error) bool {
	var e unix.Errno
	return errors.As(err, &e) || errors.Is(err, os.ErrDeadlineExceeded)
}

func (r *run) deadline(ctx context.Context) time.Time {
	d := time.Now().Add(r.t.cfg.WaitPerProbe)
	if cd, ok := ctx.Deadline(); ok && cd.Before(d) {
		return cd
	}
	return d
}

// handle applies what came back, as tracepath's recverr does: every entry is
// processed in order, a terminal one ends the trace.
func (r *run) handle(evs []event) status {
	st := noReply
	for _, ev := range evs {
		st = progress
		if r.apply(ev) {
			return finished
		}
	}
	return st
}

// apply processes one event and reports whether the trace is over.
func (r *run) apply(ev event) bool {
	if r.debug {
		r.t.log.Debug("path: answer", "addr", r.addr, "ttl", r.ttl, "errno", ev.errno, "from", ev.offender,
			"type", ev.icmpType, "code", ev.icmpCode, "info", ev.info,
			"probe_ttl", ev.probeTTL, "probe_seq", ev.probeSeq, "reply", ev.reply)
	}
	sndhops := -1
	if ev.quoted && ev.probeSeq <= r.seq {
		sndhops = ev.probeTTL
	}
	hop := sndhops
	if hop < 0 {
		hop = r.ttl
	}
	back := backHops(ev.recvTTL)
	if ev.reply {
		// tracepath stops here without a hop count ("reply received 8)");
		// the probe's TTL is known, so report it.
		r.reached, r.reason = true, ReasonReached
		r.hopsTo, r.hopsFrom = r.ttl, back
		r.setHop(r.ttl, r.addr)
		return true
	}
	switch ev.errno {
	case unix.EMSGSIZE:
		if int(ev.info) > r.overhead+headerLen {
			r.mtu = int(ev.info)
		}
		return false
	case unix.ETIMEDOUT:
		return false
	case unix.ECONNREFUSED:
		r.reached, r.reason = true, ReasonReached
		r.hopsTo, r.hopsFrom = hop, back
		r.setHop(hop, ev.offender)
		return true
	case unix.EHOSTUNREACH:
		if isTimeExceeded(ev) {
			r.setHop(hop, ev.offender)
			return false
		}
	}
	r.setHop(hop, ev.offender)
	r.reason = unreachableReason(ev)
	return true
}

// backHops turns a received TTL into a hop count the way tracepath does,
// guessing the sender's initial TTL as 64, 128 or 255 (the smallest not
// below the received one); -1 when no TTL came with the answer.
func backHops(ttl int) int {
	switch {
	case ttl < 0:
		return -1
	case ttl <= 64:
		return 65 - ttl
	case ttl <= 128:
		return 129 - ttl
	default:
		return 256 - ttl
	}
}

func isTimeExceeded(ev event) bool {
	return (ev.origin == unix.SO_EE_ORIGIN_ICMP && ev.icmpType == 11 && ev.icmpCode == 0) ||
		(ev.origin == unix.SO_EE_ORIGIN_ICMP6 && ev.icmpType == 3 && ev.icmpCode == 0)
}

// unreachableReason names a terminal error like tracepath's !H, !N, !A, !P.
func unreachableReason(ev event) string {
	kind := ev.errno.Error()
	switch ev.errno {
	case unix.EHOSTUNREACH:
		kind = "host"
	case unix.ENETUNREACH:
		kind = "net"
	case unix.EACCES:
		kind = "admin"
	case unix.EPROTO:
		kind = "protocol"
	}
	switch ev.origin {
	case unix.SO_EE_ORIGIN_ICMP:
		return fmt.Sprintf("unreachable (%s, icmp type %d code %d)", kind, ev.icmpType, ev.icmpCode)
	case unix.SO_EE_ORIGIN_ICMP6:
		return fmt.Sprintf("unreachable (%s, icmpv6 type %d code %d)", kind, ev.icmpType, ev.icmpCode)
	}
	return fmt.Sprintf("unreachable (%s, local)", kind)
}

// setHop records who answered for a TTL.
func (r *run) setHop(ttl int, a netip.Addr) {
	if ttl < 1 || ttl > 255 {
		return
	}
	r.pad(ttl)
	if a.IsValid() {
		r.hops[ttl-1] = a.String()
	}
}

// pad extends the hop list with "*" up to ttl entries.
func (r *run) pad(ttl int) {
	for len(r.hops) < ttl {
		r.hops = append(r.hops, "*")
	}
}

func (r *run) result() Result {
	res := Result{
		Family:    r.family,
		PMTUBytes: r.mtu,
		HopList:   r.hops,
		Reached:   r.reached,
		Reason:    r.reason,
	}
	if r.reached {
		res.Hops = r.hopsTo
		res.Back = max(r.hopsFrom, 0)
		if len(res.HopList) > r.hopsTo {
			res.HopList = res.HopList[:r.hopsTo]
		}
	}
	return res
}

// checkBlackHole runs after MaxHops without reaching the target. When the
// path went silent while probes were larger than the protocol minimum, it
// sends minimum-size probes to the first silent TTL: an answer to those means
// the large probes died for their size and the "too big" answer never came
// back. PMTUBytes, Hops and HopList keep tracepath's values.
func (r *run) checkBlackHole(ctx context.Context) error {
	minMTU := minMTU4
	if r.family == 6 {
		minMTU = minMTU6
	}
	if r.mtu <= minMTU {
		return nil
	}
	last := 0
	for i, h := range r.hops {
		if h != "*" {
			last = i + 1
		}
	}
	ttl := last + 1
	if ttl > r.t.cfg.MaxHops {
		return nil
	}
	if err := r.s.setTTL(ttl); err != nil {
		return err
	}
	first := r.seq + 1
	for range r.t.cfg.ProbesPerHop {
		r.seq++
		if err := r.s.send(ctx, ttl, r.seq, minMTU-r.overhead, r.deadline(ctx)); err != nil {
			if isSendRefusal(err) {
				continue
			}
			return fmt.Errorf("send: %w", err)
		}
		evs, err := r.s.wait(ctx, r.deadline(ctx))
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		for _, ev := range evs {
			if ev.quoted && ev.probeSeq < first {
				continue // a late answer to a full-size probe
			}
			if ev.reply || ev.errno == unix.ECONNREFUSED || isTimeExceeded(ev) {
				r.t.log.Debug("path: minimum-size probe passed", "addr", r.addr, "ttl", ttl, "from", ev.offender)
				r.reason = ReasonBlackHole
				return nil
			}
		}
	}
	return nil
}

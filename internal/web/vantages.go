package web

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/v6matrix/v6matrix/internal/probe/tcpport"
	"github.com/v6matrix/v6matrix/internal/result"
	"github.com/v6matrix/v6matrix/internal/store"
)

// vantageKinds are the probes the comparison of vantages reads: did the address
// answer a ping, or accept a connection on port 80 or 443?
var vantageKinds = []string{result.KindPing, result.KindTCP80, result.KindTCP443}

// reachable says whether an address answered one of vantageKinds: unknown when the
// vantage did not measure it (never counted as unreachable).
func reachable(a *result.Address, kind string) result.Tri {
	if kind == result.KindPing {
		switch {
		case a.Ping == nil:
			return result.Unknown
		case a.Ping.Received > 0:
			return result.Yes
		}
		return result.No
	}
	port := 80
	if kind == result.KindTCP443 {
		port = 443
	}
	switch t := a.TCP(port); {
	case t == nil:
		return result.Unknown
	case t.State == tcpport.StateOpen:
		return result.Yes
	}
	return result.No
}

// familyCount is what one vantage probed of one address family, and reached.
type familyCount struct {
	Probed int `json:"probed"`
	Ping   int `json:"ping"`
	TCP80  int `json:"tcp80"`
	TCP443 int `json:"tcp443"`
}

func (f *familyCount) add(a *result.Address) {
	f.Probed++
	for _, k := range vantageKinds {
		if reachable(a, k) != result.Yes {
			continue
		}
		switch k {
		case result.KindPing:
			f.Ping++
		case result.KindTCP80:
			f.TCP80++
		default:
			f.TCP443++
		}
	}
}

// vantageCount is one vantage's probes of a run.
type vantageCount struct {
	Vantage string      `json:"vantage"`
	Own     bool        `json:"own"` // the run's own vantage (its DNS stage's)
	V4      familyCount `json:"v4"`
	V6      familyCount `json:"v6"`
}

// reachDiff is an address that vantage A reached and B did not: the kinds A reached
// that B measured and did not.
type reachDiff struct {
	IP    string   `json:"ip"`
	Kinds []string `json:"kinds"`
}

// vantageData is the comparison of a run's vantages: every vantage's counts, and a
// page of the addresses that A reached and B did not (when the run has two).
type vantageData struct {
	Run      store.Run      `json:"-"`
	RunID    int64          `json:"run"`
	Vantages []vantageCount `json:"vantages"`
	A        string         `json:"a"`
	B        string         `json:"b"`
	OnlyA    []reachDiff    `json:"only_a"`
	// Next is the address after which the next page starts ("" on the last page);
	// NextURL the page's link to it.
	Next    string `json:"next"`
	NextURL string `json:"-"`
	// Names are the vantages' names, for the page's form.
	Names []string `json:"-"`
}

// Bounds of one page of the comparison: at most vantagePage addresses listed, and at
// most vantageScan addresses read (then the page ends early with a link to go on), so
// that a request costs the same however rare the differences.
const (
	vantagePage = 50
	vantageScan = 20000
)

// vantageCountsTTL is how long a vantage's counts are kept: they read every probe of
// the vantage, and a vantage still measuring changes them.
const vantageCountsTTL = time.Minute

// vantages builds the comparison of run's vantages that the request asks for (a, b,
// after).
func (s *Server) vantages(r *http.Request, runArg string) (vantageData, error) {
	ctx := r.Context()
	var d vantageData
	run, err := s.runParam(ctx, runArg)
	if err != nil {
		return d, err
	}
	d.Run, d.RunID, d.OnlyA = run, run.ID, []reachDiff{}
	if d.Names, err = s.st.Vantages(ctx, run.ID); err != nil {
		return d, err
	}
	q := r.URL.Query()
	d.A, d.B = q.Get("a"), q.Get("b")
	if d.A == "" {
		d.A = d.Names[0]
	}
	if d.B == "" {
		if i := slices.IndexFunc(d.Names, func(v string) bool { return v != d.A }); i >= 0 {
			d.B = d.Names[i]
		}
	}
	for _, v := range []string{d.A, d.B} {
		if v != "" && !slices.Contains(d.Names, v) {
			return d, notFound("%v", store.CheckVantage(ctx, s.st, run.ID, v))
		}
	}
	if d.A == d.B {
		return d, badRequest("a and b name the same vantage %q: compare two", d.A)
	}
	after := q.Get("after")
	if _, err := netip.ParseAddr(after); after != "" && err != nil {
		return d, badRequest("after=%q: want an address", after)
	}
	for i, v := range d.Names {
		c, err := s.vantageCount(ctx, run.ID, v)
		if err != nil {
			return d, err
		}
		c.Own = i == 0
		d.Vantages = append(d.Vantages, c)
	}
	if d.B == "" {
		return d, nil
	}
	scanned := 0
	err = s.st.VantageResults(ctx, run.ID, d.A, d.B, vantageKinds, after, func(p store.VantagePair) bool {
		scanned++
		var kinds []string
		for _, k := range vantageKinds {
			if reachable(&p.A, k) == result.Yes && reachable(&p.B, k) == result.No {
				kinds = append(kinds, k)
			}
		}
		if len(kinds) > 0 {
			d.OnlyA = append(d.OnlyA, reachDiff{IP: p.A.IP.String(), Kinds: kinds})
		}
		if len(d.OnlyA) == vantagePage || scanned == vantageScan {
			d.Next = p.A.IP.String()
			return false
		}
		return true
	})
	if err != nil {
		return d, err
	}
	if d.Next != "" {
		v := url.Values{"a": {d.A}, "b": {d.B}, "after": {d.Next}}
		d.NextURL = fmt.Sprintf("/runs/%d/vantages?%s", run.ID, v.Encode())
	}
	return d, nil
}

// vantageCount counts one vantage's probes of a run, kept vantageCountsTTL.
func (s *Server) vantageCount(ctx context.Context, run int64, v string) (vantageCount, error) {
	key := strconv.FormatInt(run, 10) + " " + v
	s.mu.Lock()
	e, ok := s.vantageCounts[key]
	s.mu.Unlock()
	if ok && time.Since(e.at) < vantageCountsTTL {
		return e.c, nil
	}
	c := vantageCount{Vantage: v}
	err := s.st.VantageResults(ctx, run, v, v, vantageKinds, "", func(p store.VantagePair) bool {
		if p.A.IP.Is4() || p.A.IP.Is4In6() {
			c.V4.add(&p.A)
		} else {
			c.V6.add(&p.A)
		}
		return true
	})
	if err != nil {
		return c, err
	}
	s.mu.Lock()
	s.vantageCounts[key] = vantageCountEntry{time.Now(), c}
	s.mu.Unlock()
	return c, nil
}

// vantageCountEntry is a vantage's counts and when they were read.
type vantageCountEntry struct {
	at time.Time
	c  vantageCount
}

func (s *Server) vantagesPage(w http.ResponseWriter, r *http.Request) error {
	d, err := s.vantages(r, r.PathValue("run"))
	if err != nil {
		return err
	}
	s.render(w, r, http.StatusOK, "vantages.html", page{Title: fmt.Sprintf("Run %d from its vantages", d.RunID), Nav: "runs", Run: &d.Run, Data: d})
	return nil
}

func (s *Server) apiVantages(w http.ResponseWriter, r *http.Request) error {
	d, err := s.vantages(r, r.PathValue("run"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

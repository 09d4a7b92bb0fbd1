package web

import (
	"compress/gzip"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/v6matrix/v6matrix/internal/export"
	"github.com/v6matrix/v6matrix/internal/result"
	"github.com/v6matrix/v6matrix/internal/store"
)

func (s *Server) apiRuns(w http.ResponseWriter, r *http.Request) error {
	rows, err := s.runRows(r)
	if err != nil {
		return err
	}
	return writeTable(w, r, "runs", map[string]any{}, "runs", rows)
}

// trendRow is one run of a trend: percentages of measured domains with IPv6.
type trendRow struct {
	Run      int64   `json:"run"`
	Started  string  `json:"started"`
	Domains  int     `json:"domains"`
	Measured int     `json:"measured"`
	NS       float64 `json:"ns"`
	MX       float64 `json:"mx"`
	WWW      float64 `json:"www"`
	NTP      float64 `json:"ntp"`
	All      float64 `json:"all"`
}

func (s *Server) apiTrend(w http.ResponseWriter, r *http.Request) error {
	kind, key := "run", ""
	if tld := r.URL.Query().Get("tld"); tld != "" {
		kind, key = "tld", strings.ToLower(tld)
	}
	ps, err := s.st.Trend(r.Context(), kind, key)
	if err != nil {
		return err
	}
	rows := make([]trendRow, len(ps))
	for i, p := range ps {
		row := rowOf(p.Aggregate)
		rows[i] = trendRow{Run: p.Run, Started: rfc3339(p.Started), Domains: p.Domains, Measured: p.Measured,
			NS: row.NSPct, MX: row.MXPct, WWW: row.WWWPct, NTP: row.NTPPct, All: row.AllPct}
	}
	return writeTable(w, r, "trend", map[string]any{"kind": kind, "key": key}, "runs", rows)
}

func (s *Server) apiTLDs(w http.ResponseWriter, r *http.Request) error {
	run, rows, _, _, err := s.sortedAggs(r, r.PathValue("run"), "tld", "key")
	if err != nil {
		return err
	}
	return writeTable(w, r, fmt.Sprintf("run%d-tlds", run.ID), map[string]any{"run": run.ID}, "tlds", rows)
}

func (s *Server) apiCountries(w http.ResponseWriter, r *http.Request) error {
	run, err := s.runParam(r.Context(), r.PathValue("run"))
	if err != nil {
		return err
	}
	rows, err := s.aggRows(r, run.ID, "country")
	if err != nil {
		return err
	}
	if err := sortRows(rows, "key", false); err != nil {
		return err
	}
	return writeTable(w, r, fmt.Sprintf("run%d-countries", run.ID), map[string]any{"run": run.ID}, "countries", rows)
}

func (s *Server) apiDomains(w http.ResponseWriter, r *http.Request) error {
	t, err := s.tldDomains(r, r.PathValue("run"))
	if err != nil {
		return err
	}
	run, tld, q, ds, rows := t.run, t.tld, t.q, t.ds, t.rows
	env := map[string]any{"run": run.ID, "tld": tld}
	if c := nextCursor(q, ds); c != "" {
		env["next"] = c
		// The request's parameters (format=csv among them) with the next cursor.
		next := r.URL.Query()
		next.Set("sort", string(q.Sort))
		next.Set("dir", map[bool]string{true: "desc", false: "asc"}[q.Desc])
		next.Set("limit", strconv.Itoa(q.Limit))
		next.Set("after", c)
		w.Header().Set("Link", fmt.Sprintf(`</api/v1/runs/%d/tlds/%s/domains?%s>; rel="next"`, run.ID, url.PathEscape(tld), next.Encode()))
	}
	return writeTable(w, r, fmt.Sprintf("run%d-%s-domains", run.ID, tld), env, "domains", rows)
}

// domainAPI is a domain's API document: its JSON Lines record, its summary and its
// history.
type domainAPI struct {
	export.DomainDoc
	Summary domainRow    `json:"summary"`
	History []historyAPI `json:"history"`
}

type historyAPI struct {
	Run     int64     `json:"run"`
	Started string    `json:"started"`
	Summary domainRow `json:"summary"`
	Changes []string  `json:"changes,omitempty"`
}

func (s *Server) apiDomain(w http.ResponseWriter, r *http.Request) error {
	dd, err := s.domainData(r, r.PathValue("run"))
	if err != nil {
		return err
	}
	run, d, sum, hist := dd.run, dd.detail, dd.summary, dd.history
	out := domainAPI{DomainDoc: export.DomainDocument(run.ID, &d), Summary: domainRowOf(&sum), History: []historyAPI{}}
	for _, h := range historyOf(hist) {
		out.History = append(out.History, historyAPI{Run: h.Run, Started: rfc3339(h.Started), Summary: h.Row, Changes: h.Changes})
	}
	if asCSV, err := wantsCSV(r); err != nil {
		return err
	} else if asCSV {
		return writeTable(w, r, fmt.Sprintf("run%d-%s", run.ID, d.Name), nil, "", []domainRow{out.Summary})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// diffRow is one role of a diff.
type diffRow struct {
	Role   string `json:"role"`
	Gained int    `json:"gained"`
	Lost   int    `json:"lost"`
}

func (s *Server) apiDiff(w http.ResponseWriter, r *http.Request) error {
	d, err := s.diff(r, r.PathValue("run"), r.PathValue("other"))
	if err != nil {
		return err
	}
	q := r.URL.Query()
	if role, change := q.Get("role"), q.Get("change"); role != "" || change != "" {
		return s.apiChanges(w, r, d, role, change)
	}
	rows := make([]diffRow, len(result.Roles))
	for i, role := range result.Roles {
		rows[i] = diffRow{Role: string(role), Gained: d.Counts.Gained[i], Lost: d.Counts.Lost[i]}
	}
	return writeTable(w, r, fmt.Sprintf("run%d-run%d-diff", d.A.ID, d.B.ID), map[string]any{"run": d.A.ID, "other": d.B.ID,
		"common": d.Counts.Common, "only_run": d.Counts.OnlyA, "only_other": d.Counts.OnlyB}, "roles", rows)
}

// apiChanges lists the domains of one role and change of a diff, paged by ?after=rank:name.
func (s *Server) apiChanges(w http.ResponseWriter, r *http.Request, d diffData, role, change string) error {
	ok := false
	for _, x := range result.Roles {
		ok = ok || string(x) == role
	}
	if !ok || (change != "gained" && change != "lost") {
		return badRequest("role %q and change %q: want role ns, mx, www or ntp and change gained or lost", role, change)
	}
	var after store.Cursor
	if a := r.URL.Query().Get("after"); a != "" {
		rank, name, found := strings.Cut(a, ":")
		n, err := strconv.Atoi(rank)
		if !found || err != nil {
			return badRequest("after %q: want rank:name of the last row", a)
		}
		after = store.Cursor{Rank: n, Name: name}
	}
	cs, err := s.st.Changes(r.Context(), d.A.ID, d.B.ID, result.Role(role), change, after, maxPage)
	if err != nil {
		return err
	}
	return writeTable(w, r, fmt.Sprintf("run%d-run%d-%s-%s", d.A.ID, d.B.ID, role, change),
		map[string]any{"run": d.A.ID, "other": d.B.ID}, "domains", cs)
}

// apiExport streams a record file, gzip-compressed when the client accepts it.
func (s *Server) apiExport(w http.ResponseWriter, r *http.Request) error {
	run, err := s.runParam(r.Context(), r.PathValue("run"))
	if err != nil {
		return err
	}
	if run.State != store.RunDone {
		return &httpError{http.StatusConflict, fmt.Sprintf("run %d is %s: its record files are complete once it is done", run.ID, run.State)}
	}
	file := r.PathValue("file")
	names, err := export.FileNames(r.Context(), s.st, run.ID)
	if err != nil {
		return err
	}
	if !slices.Contains(names, file) {
		return notFound("run %d has no file %q: it has %s", run.ID, file, strings.Join(names, ", "))
	}
	h := w.Header()
	h.Set("Content-Type", "text/csv; charset=utf-8")
	if strings.HasSuffix(file, ".jsonl") {
		h.Set("Content-Type", "application/jsonl")
	}
	h.Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", fmt.Sprintf("v6matrix-run%d-%s", run.ID, file)))
	h.Add("Vary", "Accept-Encoding")
	if r.Method == http.MethodHead {
		return nil
	}
	out := http.ResponseWriter(w)
	var zw *gzip.Writer
	if acceptsGzip(r) {
		h.Set("Content-Encoding", "gzip")
		zw = gzip.NewWriter(w)
		out = gzipWriter{w, zw}
	}
	err = export.Stream(r.Context(), s.st, run.ID, file, out)
	if zw != nil {
		if cerr := zw.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil && !errors.Is(err, r.Context().Err()) {
		// The status is sent; all that can be done is to log and cut the response.
		s.log.Error("web: export failed", "run", run.ID, "file", file, "err", err)
		panic(http.ErrAbortHandler)
	}
	return nil
}

// gzipWriter sends a response body through gzip.
type gzipWriter struct {
	http.ResponseWriter
	zw *gzip.Writer
}

func (g gzipWriter) Write(b []byte) (int, error) { return g.zw.Write(b) }

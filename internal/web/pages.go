package web

import (
	"bytes"
	"context"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/v6matrix/v6matrix/internal/domains"
	"github.com/v6matrix/v6matrix/internal/result"
	"github.com/v6matrix/v6matrix/internal/store"
	"github.com/v6matrix/v6matrix/internal/summary"
)

// pageSize is how many domains a TLD page shows; maxPage bounds ?limit.
const (
	pageSize = 50
	maxPage  = 500
)

func (s *Server) overview(w http.ResponseWriter, r *http.Request) error {
	run, err := s.latest(r.Context())
	if err != nil {
		var he *httpError
		if errors.As(err, &he) {
			s.render(w, r, http.StatusOK, "empty.html", page{Title: "No results yet", Nav: "overview", Data: he.msg})
			return nil
		}
		return err
	}
	g, err := s.st.Aggregate(r.Context(), run.ID, "run", "")
	if err != nil {
		return err
	}
	tlds, err := s.aggRows(r, run.ID, "tld")
	if err != nil {
		return err
	}
	if err := sortRows(tlds, "domains", true); err != nil {
		return err
	}
	if len(tlds) > 10 {
		tlds = tlds[:10]
	}
	s.render(w, r, http.StatusOK, "overview.html", page{Title: "IPv6 among popular domains", Nav: "overview", Run: &run,
		Data: struct {
			Agg  result.Aggregate
			Row  aggRow
			TLDs []aggRow
		}{g, rowOf(g), tlds}})
	return nil
}

// aggRows returns a run's aggregates of a kind as rows, with country names.
func (s *Server) aggRows(r *http.Request, run int64, kind string) ([]aggRow, error) {
	gs, err := s.st.Aggregates(r.Context(), run, kind)
	if err != nil {
		return nil, err
	}
	rows := make([]aggRow, len(gs))
	for i, g := range gs {
		rows[i] = rowOf(g)
		if kind == "country" {
			rows[i].Name = s.countryName(g.Key)
		}
	}
	return rows, nil
}

// sortParams reads ?sort= and ?dir=; without ?dir a column sorts in its natural
// direction (natDesc).
func sortParams(r *http.Request, def string, natDesc func(string) bool) (string, bool, error) {
	q := r.URL.Query()
	by := q.Get("sort")
	if by == "" {
		by = def
	}
	switch q.Get("dir") {
	case "":
		return by, natDesc(by), nil
	case "asc":
		return by, false, nil
	case "desc":
		return by, true, nil
	}
	return "", false, badRequest("dir %q: want asc or desc", q.Get("dir"))
}

// aggDesc: aggregate tables sort figures largest first, names alphabetically.
func aggDesc(col string) bool { return col != "key" && col != "name" }

// domainDesc: domain lists sort every column ascending (best rank, IPv6 first).
func domainDesc(string) bool { return false }

// sortLinks builds the header links of a sortable table: each column's URL (which
// reverses the direction when it is the current column) and its aria-sort value.
type sortLinks struct {
	base     url.Values
	path, by string
	desc     bool
	natDesc  func(string) bool
}

// Href returns the URL that sorts by col.
func (l sortLinks) Href(col string) string {
	q := url.Values{}
	for k, v := range l.base {
		if k != "sort" && k != "dir" && k != "after" {
			q[k] = v
		}
	}
	desc := l.natDesc(col)
	if col == l.by {
		desc = !l.desc
	}
	q.Set("sort", col)
	q.Set("dir", map[bool]string{true: "desc", false: "asc"}[desc])
	return l.path + "?" + q.Encode()
}

// Aria returns the aria-sort value of col.
func (l sortLinks) Aria(col string) string {
	if col != l.by {
		return "none"
	}
	if l.desc {
		return "descending"
	}
	return "ascending"
}

// sortedAggs reads a run's aggregates of a kind as rows in the request's order (?sort,
// ?dir; def without them).
func (s *Server) sortedAggs(r *http.Request, runArg, kind, def string) (run store.Run, rows []aggRow, by string, desc bool, err error) {
	if run, err = s.runParam(r.Context(), runArg); err != nil {
		return
	}
	if rows, err = s.aggRows(r, run.ID, kind); err != nil {
		return
	}
	if by, desc, err = sortParams(r, def, aggDesc); err != nil {
		return
	}
	err = sortRows(rows, by, desc)
	return
}

func (s *Server) tldsPage(w http.ResponseWriter, r *http.Request) error {
	run, rows, by, desc, err := s.sortedAggs(r, orLatest(r.URL.Query().Get("run")), "tld", "domains")
	if err != nil {
		return err
	}
	s.render(w, r, http.StatusOK, "tlds.html", page{Title: "The Matrix: IPv6 by top-level domain", Nav: "tlds", Run: &run,
		Data: struct {
			Rows []aggRow
			Sort sortLinks
		}{rows, sortLinks{r.URL.Query(), "/tlds", by, desc, aggDesc}}})
	return nil
}

func orLatest(v string) string {
	if v == "" {
		return "latest"
	}
	return v
}

// domainPage reads the ?sort, ?dir, ?after and ?limit of a TLD's domain list.
func domainQuery(r *http.Request, tld string) (store.SummaryQuery, error) {
	q := store.SummaryQuery{TLD: tld, Limit: pageSize}
	by, desc, err := sortParams(r, "rank", domainDesc)
	if err != nil {
		return q, err
	}
	q.Sort, q.Desc = store.SortKey(by), desc
	ok := false
	for _, k := range store.SortKeys {
		ok = ok || k == q.Sort
	}
	if !ok {
		return q, badRequest("sort %q: want rank, name, ns, mx, www or ntp", by)
	}
	v := r.URL.Query()
	if a := v.Get("after"); a != "" {
		key, name, found := strings.Cut(a, ":")
		n, err := strconv.ParseInt(key, 10, 64)
		if !found || err != nil {
			return q, badRequest("after %q: want the next link of the previous page", a)
		}
		q.After = &store.PageCursor{Key: n, Name: name}
	}
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > maxPage {
			return q, badRequest("limit %q: want 1 to %d", l, maxPage)
		}
		q.Limit = n
	}
	return q, nil
}

// nextCursor returns the after= value that continues after the last row, or "".
func nextCursor(q store.SummaryQuery, rows []result.DomainSummary) string {
	if len(rows) < q.Limit {
		return ""
	}
	last := &rows[len(rows)-1]
	return strconv.FormatInt(store.SortValue(last, q.Sort), 10) + ":" + last.Name
}

// tldDomains is a page of a TLD's domains: the TLD's aggregate, the query the request
// asks for, and the rows.
type tldDomains struct {
	run  store.Run
	tld  string
	agg  result.Aggregate
	q    store.SummaryQuery
	ds   []result.DomainSummary
	rows []domainRow
}

// tldDomains reads the {tld} of the request in a run, a page in the request's order.
func (s *Server) tldDomains(r *http.Request, runArg string) (t tldDomains, err error) {
	t.tld = strings.ToLower(r.PathValue("tld"))
	if t.run, err = s.runParam(r.Context(), runArg); err != nil {
		return t, err
	}
	if t.agg, err = s.st.Aggregate(r.Context(), t.run.ID, "tld", t.tld); errors.Is(err, store.ErrNotFound) {
		return t, notFound("no domain of .%s in run %d", t.tld, t.run.ID)
	} else if err != nil {
		return t, err
	}
	if t.q, err = domainQuery(r, t.tld); err != nil {
		return t, err
	}
	if t.ds, err = s.st.DomainSummaries(r.Context(), t.run.ID, t.q); err != nil {
		return t, err
	}
	t.rows = make([]domainRow, len(t.ds))
	for i := range t.ds {
		t.rows[i] = domainRowOf(&t.ds[i])
	}
	return t, nil
}

func (s *Server) tldPage(w http.ResponseWriter, r *http.Request) error {
	t, err := s.tldDomains(r, orLatest(r.URL.Query().Get("run")))
	if err != nil {
		return err
	}
	run, tld, g, q, ds, rows := t.run, t.tld, t.agg, t.q, t.ds, t.rows
	next := ""
	if c := nextCursor(q, ds); c != "" {
		v := r.URL.Query()
		v.Set("after", c)
		next = "/tld/" + url.PathEscape(tld) + "?" + v.Encode()
	}
	s.render(w, r, http.StatusOK, "tld.html", page{Title: "." + tld, Nav: "tlds", Run: &run,
		Data: struct {
			TLD         string
			Row         aggRow
			Domains     []domainRow
			Next, First string
			Paged       bool
			Sort        sortLinks
		}{tld, rowOf(g), rows, next, "/tld/" + url.PathEscape(tld), q.After != nil,
			sortLinks{r.URL.Query(), "/tld/" + url.PathEscape(tld), string(q.Sort), q.Desc, domainDesc}}})
	return nil
}

func (s *Server) mapPage(w http.ResponseWriter, r *http.Request) error {
	run, rows, by, desc, err := s.sortedAggs(r, orLatest(r.URL.Query().Get("run")), "country", "v6")
	if err != nil {
		return err
	}
	s.render(w, r, http.StatusOK, "map.html", page{Title: "IPv6 hosts by country", Nav: "map", Run: &run, GeoIP: true,
		Data: struct {
			Rows []aggRow
			Sort sortLinks
		}{rows, sortLinks{r.URL.Query(), "/map", by, desc, aggDesc}}})
	return nil
}

// located serves a country or AS page.
func (s *Server) located(w http.ResponseWriter, r *http.Request, kind, key, title string) error {
	run, err := s.runParam(r.Context(), orLatest(r.URL.Query().Get("run")))
	if err != nil {
		return err
	}
	g, err := s.st.Aggregate(r.Context(), run.ID, kind, key)
	if errors.Is(err, store.ErrNotFound) {
		return notFound("no address located in %s in run %d", title, run.ID)
	} else if err != nil {
		return err
	}
	offset := 0
	if o := r.URL.Query().Get("offset"); o != "" {
		if offset, err = strconv.Atoi(o); err != nil || offset < 0 || offset > 100000 {
			return badRequest("offset %q: want 0 to 100000", o)
		}
	}
	addrs, err := s.st.Located(r.Context(), run.ID, kind, key, 100, offset)
	if err != nil {
		return err
	}
	row := rowOf(g)
	if kind == "country" {
		row.Name = s.countryName(key)
	}
	next := ""
	if len(addrs) == 100 {
		q := r.URL.Query() // keeps run=
		q.Set("offset", strconv.Itoa(offset+100))
		next = "?" + q.Encode()
	}
	s.render(w, r, http.StatusOK, "located.html", page{Title: title, Nav: "map", Run: &run, GeoIP: true,
		Data: struct {
			Kind, Key, Title string
			Row              aggRow
			Addrs            []result.AddressSummary
			Next             string
		}{kind, key, title, row, addrs, next}})
	return nil
}

func (s *Server) countryPage(w http.ResponseWriter, r *http.Request) error {
	cc := strings.ToUpper(r.PathValue("cc"))
	if len(cc) != 2 {
		return notFound("no country %q: want a two-letter code", r.PathValue("cc"))
	}
	return s.located(w, r, "country", cc, s.countryName(cc))
}

func (s *Server) asnPage(w http.ResponseWriter, r *http.Request) error {
	asn := strings.TrimPrefix(strings.ToUpper(r.PathValue("asn")), "AS")
	if n, err := strconv.ParseUint(asn, 10, 32); err != nil || n == 0 {
		return notFound("no autonomous system %q", r.PathValue("asn"))
	}
	return s.located(w, r, "asn", asn, "AS"+asn)
}

// domainData is what a domain's page and API document show.
type domainData struct {
	run     store.Run
	detail  store.Detail
	summary result.DomainSummary
	history []store.HistoryPoint
}

// domainData reads the {name} of the request in a run: for a finished, summarised run
// its document and history in one query (under load each query of a page waits for
// one of the store's few connections), else its tables.
func (s *Server) domainData(r *http.Request, runArg string) (domainData, error) {
	var dd domainData
	name, err := domainName(r.PathValue("name"))
	if err != nil {
		return dd, err
	}
	ctx := r.Context()
	if dd.run, err = s.runParam(ctx, runArg); err != nil {
		return dd, err
	}
	documented := false
	if dd.run.State == store.RunDone {
		dd.detail, dd.history, err = s.st.DomainPage(ctx, dd.run.ID, name)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return dd, err
		}
		documented = err == nil
	} else if dd.history, err = s.st.History(ctx, name); err != nil {
		return dd, err
	}
	if !documented {
		if dd.detail, err = s.st.Domain(ctx, dd.run.ID, "", name); errors.Is(err, store.ErrNotFound) {
			return dd, notFound("%s is not in run %d", name, dd.run.ID)
		} else if err != nil {
			return dd, err
		}
	}
	// The run's summary is a point of the history.
	for _, h := range dd.history {
		if h.Run == dd.run.ID {
			dd.summary = h.DomainSummary
			return dd, nil
		}
	}
	dd.summary, err = s.st.DomainSummary(ctx, dd.run.ID, name)
	return dd, err
}

func (s *Server) domainPage(w http.ResponseWriter, r *http.Request) error {
	dd, err := s.domainData(r, orLatest(r.URL.Query().Get("run")))
	if err != nil {
		return err
	}
	s.renderDomain(w, r, &dd)
	return nil
}

// renderDomain writes a domain's page.
func (s *Server) renderDomain(w http.ResponseWriter, r *http.Request, dd *domainData) {
	run, d := dd.run, &dd.detail
	hosts, err := s.hostSections(r.Context(), run, d)
	if err != nil {
		s.log.Error("web: template", "name", "host", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	s.render(w, r, http.StatusOK, "domain.html", page{Title: d.Name, Nav: "tlds", Run: &run, GeoIP: true,
		Data: struct {
			Detail  *store.Detail
			Row     domainRow
			Hosts   []template.HTML
			History []historyRow
		}{d, domainRowOf(&dd.summary), hosts, historyOf(dd.history)}})
}

// hostSections renders the section of each host of a domain's page. A finished run's
// sections are kept in the response cache, by run, role, rank and host: name and mail
// servers are shared by many domains (2,000 and 1,000 providers serve the synthetic
// million; a few large ones much of a real list), so most of a page of the long tail
// is rendered once, and only its own web and time servers each time.
func (s *Server) hostSections(ctx context.Context, run store.Run, d *store.Detail) ([]template.HTML, error) {
	version, keep := "", run.State == store.RunDone
	if keep {
		v, err := s.cache.currentVersion(ctx)
		version, keep = v, err == nil
	}
	out := make([]template.HTML, 0, len(d.Hosts))
	for _, ref := range d.Hosts {
		key := "host " + strconv.FormatInt(run.ID, 10) + " " + string(ref.Role) + " " + strconv.Itoa(ref.Rank) + " " + ref.Name
		if keep {
			if e := s.cache.get(key); e != nil && e.version == version {
				out = append(out, template.HTML(e.body))
				continue
			}
		}
		var buf bytes.Buffer
		if err := templates["domain.html"].ExecuteTemplate(&buf, "host", hostViewOf(d, ref)); err != nil {
			return nil, err
		}
		if keep {
			s.cache.put(&cached{key: key, status: http.StatusOK, body: buf.Bytes(), version: version})
		}
		out = append(out, template.HTML(buf.String()))
	}
	return out, nil
}

// domainName normalises a domain from a URL (IDNs become A-labels).
func domainName(v string) (string, error) {
	n, err := domains.Normalize(v)
	if err != nil {
		return "", notFound("%q is not a domain name", v)
	}
	return n, nil
}

// runRow is a run as the runs table and the API show it.
type runRow struct {
	ID         int64  `json:"id"`
	Started    string `json:"started"`
	Finished   string `json:"finished"`
	Duration   string `json:"duration"`
	State      string `json:"state"`
	Vantage    string `json:"vantage"`
	Vantages   int    `json:"vantages"` // how many vantages measured it (its own included)
	List       string `json:"list"`
	Domains    int    `json:"domains"`
	Done       int    `json:"done"`
	Addresses  int    `json:"addresses"`
	Summarised bool   `json:"summarised"`
	Previous   int64  `json:"previous"` // the finished run before, for the diff
	// Jobs is the progress of a distributed run not yet done, by stage and vantage.
	Jobs runJobs `json:"jobs"`
}

// inProgress reports whether the run is being loaded, crawled or probed.
func (r runRow) inProgress() bool {
	switch store.RunState(r.State) {
	case store.RunLoading, store.RunCrawling, store.RunProbing:
		return true
	}
	return false
}

// runsData is what /runs shows: the runs, and how often the page refreshes its table
// (0: never, no run is in progress).
type runsData struct {
	Runs        []runRow
	LiveSeconds int
}

// runRows lists the runs, newest first: summarised runs from their aggregate, the
// others from the store's (briefly cached) counts.
func (s *Server) runRows(r *http.Request) ([]runRow, error) {
	runs, err := s.st.ListRuns(r.Context())
	if err != nil {
		return nil, err
	}
	var out []runRow
	var prev int64
	for _, x := range runs {
		row := runRow{ID: x.ID, Started: rfc3339(x.Started), Finished: rfc3339(x.Finished), State: string(x.State),
			Vantage: x.Vantage, List: x.ListName}
		if !x.Finished.IsZero() {
			row.Duration = x.Finished.Sub(x.Started).Round(1e9).String()
		}
		vs, err := s.st.Vantages(r.Context(), x.ID)
		if err != nil {
			return nil, err
		}
		row.Vantages = len(vs)
		built, err := s.st.Summarised(r.Context(), x.ID)
		if err != nil {
			return nil, err
		}
		if row.Summarised = !built.IsZero(); row.Summarised {
			g, err := s.st.Aggregate(r.Context(), x.ID, "run", "")
			if err != nil {
				return nil, err
			}
			row.Domains, row.Done = g.Domains, g.Domains
			if x.State != store.RunDone {
				// A provisional summary counts every domain of the list: how many are
				// done is the crawl's count.
				c, err := s.runCounts(r.Context(), x.ID)
				if err != nil {
					return nil, err
				}
				row.Done = c.Done
			}
			located, err := s.st.Aggregates(r.Context(), x.ID, "country")
			if err != nil {
				return nil, err
			}
			for _, c := range located {
				row.Addresses += c.V4Addresses + c.V6Addresses
			}
		} else {
			c, err := s.runCounts(r.Context(), x.ID)
			if err != nil {
				return nil, err
			}
			row.Domains, row.Done, row.Addresses = c.Total, c.Done, c.Addresses
		}
		if row.Jobs, err = s.runJobs(r.Context(), x); err != nil {
			return nil, err
		}
		if x.State == store.RunDone && row.Summarised {
			row.Previous = prev
			prev = x.ID
		}
		out = append(out, row)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}

func (s *Server) runsPage(w http.ResponseWriter, r *http.Request) error {
	rows, err := s.runRows(r)
	if err != nil {
		return err
	}
	live := s.cfg.Live
	if live <= 0 {
		live = liveEvery
	}
	data := runsData{Runs: rows}
	if slices.ContainsFunc(rows, runRow.inProgress) {
		data.LiveSeconds = max(int(live.Seconds()), 1)
	}
	s.render(w, r, http.StatusOK, "runs.html", page{Title: "Runs", Nav: "runs", Data: data})
	return nil
}

// diffData is a diff of two runs with its first changed domains per role.
type diffData struct {
	A, B    store.Run
	Counts  store.DiffCounts
	Changes map[string][]store.Change // "www gained" -> first domains
}

// diff returns the diff of two summarised runs, building it when it was not. Only an
// earlier finished run against a later one is built, one at a time: a build holds the
// store's write lock (a crawl's saves wait), and a visitor could otherwise ask for
// every pair of runs, in both orders, and runs still being crawled.
func (s *Server) diff(r *http.Request, av, bv string) (diffData, error) {
	var d diffData
	var err error
	if d.A, err = s.runParam(r.Context(), av); err != nil {
		return d, err
	}
	if d.B, err = s.runParam(r.Context(), bv); err != nil {
		return d, err
	}
	switch {
	case d.A.State != store.RunDone || d.B.State != store.RunDone:
		return d, notFound("runs %d and %d: only finished runs are compared (run %d is %s, run %d is %s)",
			d.A.ID, d.B.ID, d.A.ID, d.A.State, d.B.ID, d.B.State)
	case d.A.ID >= d.B.ID:
		return d, badRequest("runs %d and %d: a diff goes from an earlier run to a later one (/runs/%d/diff/%d)",
			d.A.ID, d.B.ID, min(d.A.ID, d.B.ID), max(d.A.ID, d.B.ID))
	}
	s.diffs.Lock()
	defer s.diffs.Unlock()
	d.Counts, err = summary.Diff(r.Context(), s.st, d.A.ID, d.B.ID, s.log)
	return d, err
}

func (s *Server) diffPage(w http.ResponseWriter, r *http.Request) error {
	d, err := s.diff(r, r.PathValue("a"), r.PathValue("b"))
	if err != nil {
		return err
	}
	d.Changes = map[string][]store.Change{}
	for _, role := range result.Roles {
		for _, ch := range []string{"gained", "lost"} {
			cs, err := s.st.Changes(r.Context(), d.A.ID, d.B.ID, role, ch, store.Cursor{}, 20)
			if err != nil {
				return err
			}
			d.Changes[string(role)+" "+ch] = cs
		}
	}
	s.render(w, r, http.StatusOK, "diff.html", page{Title: "Run " + strconv.FormatInt(d.A.ID, 10) + " to run " +
		strconv.FormatInt(d.B.ID, 10), Nav: "runs", Run: &d.B, Data: d})
	return nil
}

// maxQuery bounds a search text.
const maxQuery = 253

func (s *Server) searchPage(w http.ResponseWriter, r *http.Request) error {
	q := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(r.URL.Query().Get("q")), "."))
	if len(q) > maxQuery {
		return badRequest("search text longer than %d characters", maxQuery)
	}
	if n, err := domains.Normalize(q); err == nil {
		q = n
	}
	var data struct {
		Q       string
		Domains []domainRow
		Hosts   []string
	}
	data.Q = q
	var run store.Run
	if q != "" {
		var err error
		if run, err = s.latest(r.Context()); err != nil {
			return err
		}
		ds, hosts, err := s.st.Search(r.Context(), run.ID, q, 50)
		if err != nil {
			return err
		}
		for i := range ds {
			data.Domains = append(data.Domains, domainRowOf(&ds[i]))
		}
		data.Hosts = hosts
	}
	p := page{Title: "Search", Query: q, Data: data}
	if run.ID != 0 {
		p.Run = &run
	}
	s.render(w, r, http.StatusOK, "search.html", p)
	return nil
}

package web

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/v6matrix/v6matrix/internal/infopage"
)

// TestE2E drives the site in headless Chromium the way a visitor does: the overview's
// trend chart, a TLD from its table, a domain from the TLD's table, the world map and
// the opt-out form, checking on every page that nothing is requested from another
// origin, the console stays free of errors (CSP violations included) and the basics of
// accessibility hold. Full-page screenshots are written as test artifacts.
func TestE2E(t *testing.T) {
	deadline := time.Now().Add(browserBound)
	f := getFixture(t)
	// A server of its own, so that its opt-out requests file and rate limit are the test's.
	requests := filepath.Join(t.TempDir(), "requests.jsonl")
	s, err := New(Config{Store: f.st, Info: infopage.Config{Operator: "Test Lab", Contact: "abuse@example.org",
		Requests: requests, Ports: []string{"tcp/25", "tcp/80", "tcp/443"}, Rate: "slowly"}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s) // 127.0.0.1
	t.Cleanup(srv.Close)
	b := newBrowser(t, srv.URL, deadline)
	shots := artifactDir(t)
	t.Logf("screenshots in %s", shots)
	// Animations off: the charts are drawn in their final state when marked rendered.
	b.step(t, "emulate reduced motion", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-reduced-motion", Value: "reduce"}}})
		return err
	}))

	// The overview: its trend has one point per run.
	b.open(t, "/")
	b.waitChart(t, "/", "trend")
	if got := b.attr(t, `[data-chart="trend"]`, "data-points"); got != strconv.Itoa(len(f.runs)) {
		t.Errorf("/: trend has %s points, want %d (one per run)", got, len(f.runs))
	}
	b.checkA11y(t, "/")
	b.screenshot(t, shots, "overview")
	b.checkEvents(t, "/")

	// Follow .com from the table of TLDs.
	b.follow(t, "/", `table.data a[href="/tld/com"]`, "/tld/com")
	b.waitChart(t, "/tld/com", "trend")
	if got := b.attr(t, `[data-chart="trend"]`, "data-points"); got != strconv.Itoa(len(f.runs)) {
		t.Errorf("/tld/com: trend has %s points, want %d", got, len(f.runs))
	}
	if h1 := run(t, b, "h1 of /tld/com", chromedp.Text(chromedp.CSS("h1"))); h1 != ".com" {
		t.Errorf("/tld/com: h1 %q, want .com", h1)
	}
	b.checkA11y(t, "/tld/com")
	b.screenshot(t, shots, "tld-com")
	b.checkEvents(t, "/tld/com")

	// Follow the first domain of the TLD's table.
	first := `table.sortable tbody th a[href^="/domain/"]`
	name := strings.TrimSpace(run(t, b, "first domain of /tld/com", chromedp.Text(chromedp.CSS(first))))
	if !strings.HasSuffix(name, ".com") {
		t.Fatalf("/tld/com: first domain %q is not in .com", name)
	}
	page := "/domain/" + name
	b.follow(t, "/tld/com", first, page)
	if h1 := run(t, b, "h1 of "+page, chromedp.Text(chromedp.CSS("h1"))); h1 != name {
		t.Errorf("%s: h1 %q, want %q", page, h1, name)
	}
	hosts := run(t, b, "hosts of "+page, chromedp.Evaluate[[]string](
		`Array.from(document.querySelectorAll('main h2')).map((h) => h.textContent.trim())`))
	if !slices.Contains(hosts, "Hosts and addresses") {
		t.Errorf("%s: no hosts section; headings %q", page, hosts)
	}
	if n := run(t, b, "host sections of "+page, chromedp.Evaluate[int](`document.querySelectorAll('section.host').length`)); n == 0 {
		t.Errorf("%s: no host section (section.host)", page)
	}
	if ok := run(t, b, "badge of "+page, chromedp.Evaluate[bool](
		`(() => { const i = document.querySelector('img[src^="/badge/"]'); return !!i && i.complete && i.naturalWidth > 0; })()`)); !ok {
		t.Errorf("%s: the badge image did not load", page)
	}
	b.checkA11y(t, page)
	b.screenshot(t, shots, "domain")
	b.checkEvents(t, page)

	// The world map draws its countries.
	b.open(t, "/map")
	b.waitChart(t, "/map", "map")
	if n, err := strconv.Atoi(b.attr(t, `[data-chart="map"]`, "data-countries")); err != nil || n <= 5 {
		t.Errorf("/map: data-countries %d (%v), want more than 5", n, err)
	}
	series := run(t, b, "map series", chromedp.Evaluate[int](
		`echarts.getInstanceByDom(document.querySelector('[data-chart="map"]')).getOption().series[0].data.filter((d) => d.value > 0).length`))
	if series <= 5 {
		t.Errorf("/map: the map series has %d countries with IPv6 addresses, want more than 5", series)
	}
	rows := run(t, b, "map table", chromedp.Evaluate[int](`document.querySelectorAll('table.data tbody tr').length`))
	if rows == 0 {
		t.Error("/map: the table of countries is empty")
	}
	b.checkA11y(t, "/map")
	b.screenshot(t, shots, "map")
	b.checkEvents(t, "/map")

	// The info page's opt-out form, submitted by the browser.
	b.open(t, "/about")
	b.checkA11y(t, "/about")
	unlabelled := run(t, b, "opt-out form labels", chromedp.Evaluate[[]string](
		`['targets', 'contact', 'comment'].filter((id) => { const el = document.querySelector('form.optout #' + id); return !el || !Array.from(el.labels).some((l) => l.textContent.trim()); })`))
	if len(unlabelled) > 0 {
		t.Errorf("/about: opt-out form fields missing or without a label: %q", unlabelled)
	}
	b.screenshot(t, shots, "about")
	const target = "optout-e2e.example"
	b.step(t, "fill the opt-out form", chromedp.SendKeys(chromedp.ID("targets"), target))
	if resp := b.navigate(t, "submit the opt-out form", chromedp.Click(chromedp.CSS(`form.optout button[type="submit"]`))); resp.Status != http.StatusOK {
		t.Errorf("opt-out: HTTP %d, want 200", resp.Status)
	}
	done := run(t, b, "confirmation", chromedp.Text(chromedp.CSS(`section.done`)))
	if !strings.Contains(done, "Opt-out request received") || !strings.Contains(done, target) {
		t.Errorf("opt-out: confirmation %q lacks the heading or %s", done, target)
	}
	b.checkMarkup(t, "/about (after the opt-out)")
	b.screenshot(t, shots, "about-sent")
	b.checkEvents(t, "/about")
	saved, err := os.ReadFile(requests)
	if err != nil {
		t.Fatalf("opt-out requests file: %v", err)
	}
	if lines := strings.Split(strings.TrimSpace(string(saved)), "\n"); len(lines) != 1 || !strings.Contains(lines[0], target) {
		t.Errorf("opt-out requests file has %d lines, want 1 naming %s:\n%s", len(lines), target, saved)
	} else if !json.Valid([]byte(lines[0])) {
		t.Errorf("opt-out request is not JSON: %s", lines[0])
	}
}

// a11yScript lists what breaks the basics of accessibility on the page: the language,
// landmarks, table captions and headers, labels of form fields, text of links, buttons
// and images, unique ids.
const a11yScript = `(() => {
  const p = [];
  const visible = (el) => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden';
  const named = (el) => (el.getAttribute('aria-label') || '').trim() !== '' ||
    (el.getAttribute('aria-labelledby') || '').split(/\s+/).some((id) => id && document.getElementById(id));
  if (!document.documentElement.lang) p.push('html has no lang');
  if (!document.title.trim()) p.push('the page has no title');
  const mains = document.querySelectorAll('main, [role="main"]');
  if (mains.length !== 1) p.push(mains.length + ' main landmarks, want 1');
  if (document.querySelectorAll('h1').length !== 1) p.push(document.querySelectorAll('h1').length + ' h1 headings, want 1');
  if (!document.querySelector('body > header')) p.push('no header landmark');
  if (!document.querySelector('header nav') || !named(document.querySelector('header nav'))) p.push('no named nav in the header');
  for (const n of document.querySelectorAll('nav')) {
    if (!named(n)) p.push('nav ' + (n.className || '') + ' has no aria-label');
  }
  document.querySelectorAll('table').forEach((t, i) => {
    const cap = t.caption ? t.caption.textContent.trim() : '';
    const which = 'table ' + (cap || '#' + i);
    if (!cap) p.push(which + ' has no caption');
    const heads = t.querySelectorAll('thead th');
    if (heads.length === 0) p.push(which + ' has no header cells (thead th)');
    heads.forEach((th) => { if (!th.textContent.trim()) p.push(which + ' has an empty header cell'); });
    for (const row of t.tBodies.length ? t.tBodies[0].rows : []) {
      if (row.cells.length !== t.rows[0].cells.length) { p.push(which + ': a row has ' + row.cells.length + ' cells, the header ' + t.rows[0].cells.length); break; }
    }
  });
  for (const el of document.querySelectorAll('input, textarea, select')) {
    if (el.type === 'hidden' || !visible(el)) continue;
    const byLabel = Array.from(el.labels || []).some((l) => l.textContent.trim() !== '');
    if (!byLabel && !named(el)) p.push((el.id || el.name || el.tagName) + ' has no label');
  }
  for (const a of document.querySelectorAll('a[href], button')) {
    const text = (a.textContent || '').trim() || Array.from(a.querySelectorAll('img[alt]')).map((i) => i.alt).join('');
    if (!text && !named(a)) p.push(a.tagName.toLowerCase() + ' ' + (a.getAttribute('href') || '') + ' has no text');
  }
  for (const img of document.querySelectorAll('img')) {
    if (!img.hasAttribute('alt')) p.push('img ' + img.getAttribute('src') + ' has no alt');
  }
  const ids = new Map();
  for (const el of document.querySelectorAll('[id]')) ids.set(el.id, (ids.get(el.id) || 0) + 1);
  for (const [id, n] of ids) if (n > 1) p.push('id ' + id + ' is used ' + n + ' times');
  return p;
})()`

// checkA11y checks the page's accessibility basics and then the keyboard: the first Tab
// focuses the skip link, visibly, on screen, and the link leads into main. The page must be freshly loaded, without a
// fragment (which moves the start of the focus order).
func (b *browser) checkA11y(t *testing.T, page string) {
	t.Helper()
	b.checkMarkup(t, page)
	b.step(t, page+": Tab", chromedp.KeyEvent("\t"))
	f := run(t, b, page+": focus", chromedp.Evaluate[focusState](`(() => {
  const el = document.activeElement;
  const cs = getComputedStyle(el);
  const r = el.getBoundingClientRect();
  return { skip: el.matches('a.skip'), tag: el.outerHTML.slice(0, 80), visible: el.matches(':focus-visible'),
    outline: cs.outlineStyle, width: parseFloat(cs.outlineWidth) || 0, top: r.top, href: el.getAttribute('href') || '' };
})()`))
	switch {
	case !f.Skip:
		t.Errorf("%s: the first Tab focuses %s, want the skip link a.skip", page, f.Tag)
	case !f.Visible || f.Outline == "none" || f.Width == 0:
		t.Errorf("%s: the focused skip link shows no focus (:focus-visible %v, outline %s %gpx)", page, f.Visible, f.Outline, f.Width)
	case f.Top < 0:
		t.Errorf("%s: the focused skip link is off screen (top %gpx)", page, f.Top)
	case f.Href != "#main":
		t.Errorf("%s: the skip link goes to %q, want #main", page, f.Href)
	}
	// Enter follows the skip link: the next Tab lands in the main content.
	b.step(t, page+": Enter, Tab", chromedp.KeyEvent("\r"), chromedp.KeyEvent("\t"))
	if in := run(t, b, page+": focus after the skip link", chromedp.Evaluate[string](
		`document.activeElement.closest('main') ? '' : document.activeElement.outerHTML.slice(0, 80)`)); in != "" {
		t.Errorf("%s: after the skip link, Tab focuses %s, outside main", page, in)
	}
	// The screenshots show the page as it loaded.
	b.step(t, page+": reset", chromedp.Evaluate[chromedp.Void](
		`document.activeElement.blur(); history.replaceState(null, '', location.pathname + location.search); window.scrollTo(0, 0)`))
}

// focusState is the focused element after the first Tab.
type focusState struct {
	Skip    bool    `json:"skip"`
	Tag     string  `json:"tag"`
	Visible bool    `json:"visible"`
	Outline string  `json:"outline"`
	Width   float64 `json:"width"`
	Top     float64 `json:"top"`
	Href    string  `json:"href"`
}

// checkMarkup fails the test for each problem a11yScript finds.
func (b *browser) checkMarkup(t *testing.T, page string) {
	t.Helper()
	for _, p := range run(t, b, page+": accessibility", chromedp.Evaluate[[]string](a11yScript)) {
		t.Errorf("%s: %s", page, p)
	}
}

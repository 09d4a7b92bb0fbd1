package web

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// browser is a headless Chromium tab for the end-to-end tests, with what the tab saw:
// every request it sent and every console error, CSP violation and uncaught exception.
type browser struct {
	ctx    context.Context // the tab; bound by the whole test's deadline
	origin string          // the test server's scheme://host:port
	host   string          // and its host:port

	mu       sync.Mutex
	requests []string // URLs of every request the tab sent
	errors   []string // console errors, exceptions, error log entries
	output   syncBuffer
}

// syncBuffer keeps Chromium's output for the failure message.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.b.Len() > 64<<10 {
		return len(p), nil // enough to see what went wrong
	}
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// chromiumPath finds Debian's chromium. Missing, the test skips, except in CI where the
// browser tests must run.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/chromium", "chromium", "chromium-browser"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium not found (looked for /usr/bin/chromium and chromium in PATH); scripts/deps.sh installs it")
	}
	t.Skip("chromium not found (looked for /usr/bin/chromium and chromium in PATH); run scripts/deps.sh to install it")
	return ""
}

// browserBound bounds a browser test's whole run. It is there to end a hang, not to
// measure: on a loaded 2-core CI machine Chromium takes seconds a page, and the 40 to
// 55 s bounds these tests had made them fail under load.
const browserBound = 3 * time.Minute

// newBrowser starts a headless Chromium for a server at origin; it ends with the test or
// at deadline, whichever comes first.
func newBrowser(t *testing.T, origin string, deadline time.Time) *browser {
	t.Helper()
	exe := chromiumPath(t)
	u, err := url.Parse(origin)
	if err != nil {
		t.Fatal(err)
	}
	b := &browser{origin: origin, host: u.Host}
	profile := t.TempDir() // removed after the cancels below, which wait for the browser
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-breakpad", true),
		chromedp.Flag("disable-client-side-phishing-detection", true),
		chromedp.Flag("disable-features", "Translate,OptimizationHints,MediaRouter,InterestFeedContentSuggestions"),
		chromedp.Flag("safebrowsing-disable-auto-update", true),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("force-color-profile", "srgb"),
		// A safety net under the request check: no name resolves but the server's
		// loopback address, so nothing the browser itself starts can leave the machine.
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE "+u.Hostname()),
		chromedp.CombinedOutput(&b.output),
	}
	actx, cancelAlloc := context.WithDeadline(context.Background(), deadline)
	actx, cancelExec := chromedp.NewExecAllocator(actx, opts...)
	ctx, cancelTab := chromedp.NewContext(actx, chromedp.WithListener(b.event))
	t.Cleanup(func() {
		cancelTab()
		cancelExec()
		cancelAlloc()
		if t.Failed() {
			// Without a system bus, Chromium logs D-Bus errors that say nothing here.
			var lines []string
			for l := range strings.Lines(b.output.String()) {
				if !strings.Contains(l, "dbus") {
					lines = append(lines, l)
				}
			}
			if len(lines) > 0 {
				t.Logf("chromium output:\n%s", strings.Join(lines, ""))
			}
		}
	})
	if err := chromedp.Do(ctx); err != nil { // starts the browser and opens the tab
		t.Fatalf("start chromium %s: %v\n%s", exe, err, b.output.String())
	}
	b.ctx = ctx
	return b
}

// event runs on the tab's reader goroutine: it only records.
func (b *browser) event(ev any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch ev := ev.(type) {
	case *network.EventRequestWillBeSent:
		if ev.Request != nil {
			b.requests = append(b.requests, ev.Request.URL)
		}
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert {
			var parts []string
			for _, a := range ev.Args {
				if a.Description != "" {
					parts = append(parts, a.Description)
				} else {
					parts = append(parts, string(a.Value))
				}
			}
			b.errors = append(b.errors, fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(parts, " ")))
		}
	case *runtime.EventExceptionThrown:
		if d := ev.ExceptionDetails; d != nil {
			text := d.Text
			if d.Exception != nil && d.Exception.Description != "" {
				text += " " + d.Exception.Description
			}
			b.errors = append(b.errors, fmt.Sprintf("exception at %s:%d: %s", d.URL, d.LineNumber+1, text))
		}
	case *log.EventEntryAdded:
		if e := ev.Entry; e != nil && e.Level == log.EntryLevelError {
			b.errors = append(b.errors, fmt.Sprintf("log (%s) %s: %s", e.Source, e.URL, e.Text))
		}
	}
}

// checkEvents fails the test for every request to another origin and every console
// error seen since the last check, naming the page.
func (b *browser) checkEvents(t *testing.T, page string) {
	t.Helper()
	b.mu.Lock()
	reqs, errs := b.requests, b.errors
	b.requests, b.errors = nil, nil
	b.mu.Unlock()
	for _, r := range reqs {
		u, err := url.Parse(r)
		switch {
		case err != nil:
			t.Errorf("%s: unparsable request URL %q: %v", page, r, err)
		case u.Scheme == "data" || u.Scheme == "blob":
		case (u.Scheme != "http" && u.Scheme != "https") || u.Host != b.host:
			t.Errorf("%s: request leaves the origin %s: %s", page, b.origin, r)
		}
	}
	for _, e := range errs {
		t.Errorf("%s: %s", page, e)
	}
}

// step runs actions bounded by a step timeout.
func (b *browser) step(t *testing.T, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	run(t, b, what, chromedp.Steps(actions...))
}

// stepTimeout bounds each browser step (a hang, not a speed: see browserBound).
const stepTimeout = 45 * time.Second

// run runs one action that returns a value, bounded by the step timeout.
func run[T any](t *testing.T, b *browser, what string, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// artifactDir is where the screenshots go: $V6MATRIX_ARTIFACTS, else the test's artifact
// directory (kept with go test -artifacts).
func artifactDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("V6MATRIX_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.ArtifactDir()
}

// screenshot writes a full-page PNG of the tab to dir/name.png.
func (b *browser) screenshot(t *testing.T, dir, name string) {
	t.Helper()
	png := run(t, b, "screenshot "+name, chromedp.FullScreenshot(100))
	file := filepath.Join(dir, name+".png")
	if err := os.WriteFile(file, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s", file)
}

// navigate runs an action that loads a page (a click on a link or a button) and returns
// the page's response.
func (b *browser) navigate(t *testing.T, what string, action chromedp.Action[chromedp.Void]) *network.Response {
	t.Helper()
	return run(t, b, what, func(ctx context.Context, _ *chromedp.Target) (*network.Response, error) {
		return chromedp.RunResponse(ctx, action)
	})
}

// open loads a path of the server and fails unless it answers 200.
func (b *browser) open(t *testing.T, path string) {
	t.Helper()
	resp := run(t, b, "open "+path, chromedp.NavigateResponse(b.origin+path))
	if resp.Status != http.StatusOK {
		t.Fatalf("%s: HTTP %d, want 200", path, resp.Status)
	}
}

// follow clicks the link sel on page from and checks that it leads to path.
func (b *browser) follow(t *testing.T, from, sel, path string) {
	t.Helper()
	resp := b.navigate(t, from+": follow "+sel, chromedp.Click(chromedp.CSS(sel)))
	if resp.Status != http.StatusOK {
		t.Fatalf("%s: link %s: HTTP %d, want 200", from, sel, resp.Status)
	}
	loc := run(t, b, "location", chromedp.Location())
	if want := b.origin + path; loc != want {
		t.Fatalf("%s: link %s led to %s, want %s", from, sel, loc, want)
	}
}

// attr returns an attribute of the first element sel matches ("" when it has none).
func (b *browser) attr(t *testing.T, sel, name string) string {
	t.Helper()
	return run(t, b, sel+" "+name, chromedp.Evaluate[string](
		`document.querySelector(`+strconv.Quote(sel)+`)?.getAttribute(`+strconv.Quote(name)+`) ?? ''`))
}

// waitChart waits until app.js has drawn the chart of the kind (data-rendered is set)
// and fails unless it was drawn ("error" carries the page's message).
func (b *browser) waitChart(t *testing.T, page, kind string) {
	t.Helper()
	sel := `[data-chart="` + kind + `"]`
	state := run(t, b, page+": wait for the "+kind+" chart", chromedp.Poll[string](
		`document.querySelector(`+strconv.Quote(sel)+`)?.getAttribute('data-rendered')`,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(stepTimeout-time.Second)))
	if state != "1" {
		msg := run(t, b, "chart message", chromedp.Text(chromedp.CSS(sel)))
		t.Fatalf("%s: the %s chart was not drawn (data-rendered=%q): %s", page, kind, state, msg)
	}
}

package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"path"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/v6matrix/v6matrix/internal/result"
	"github.com/v6matrix/v6matrix/internal/store"
)

//go:embed templates/*.html
var templateFS embed.FS

// page is what every template gets: the layout's fields and the page's own Data.
type page struct {
	Title string
	Nav   string // the active navigation entry
	Run   *store.Run
	// GeoIP: the page shows GeoIP data, so the layout shows the attribution.
	GeoIP bool
	// Query is the search box's text.
	Query string
	Data  any
}

var funcs = template.FuncMap{
	"pct": func(n, d int) string { return strconv.FormatFloat(result.Percent(n, d), 'f', 1, 64) },
	"num": thousands,
	"roles": func() []result.Role {
		return result.Roles
	},
	"at":    func(a [4]int, i int) int { return a[i] },
	"sub":   func(a, b int) int { return a - b },
	"upper": strings.ToUpper,
	"date": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04")
	},
	"day": func(t time.Time) string { return t.UTC().Format("2006-01-02") },
	"path": func(parts ...string) string {
		var b strings.Builder
		for _, p := range parts {
			b.WriteString("/" + url.PathEscape(p))
		}
		return b.String()
	},
	"joinl": func(ss []string) string { return strings.Join(ss, " ") },
	"tri":   tri,
}

// triHTML is the cell of each value of a tri-state (result.Tri as text).
var triHTML = map[string]template.HTML{
	"yes":     `<span class="yes">yes</span>`,
	"no":      `<span class="no">no</span>`,
	"unknown": `<span class="unknown">unknown</span>`,
}

// tri returns a tri-state's cell (a function, not a template: tables of the long
// tail have hundreds of them).
func tri(v string) template.HTML {
	if h, ok := triHTML[v]; ok {
		return h
	}
	return `<span class="na">–</span>`
}

// thousands writes n with thin separators (12 345).
func thousands(n int) string {
	s := strconv.Itoa(n)
	if n < 0 {
		return "-" + thousands(-n)
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteRune('\u202f')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// templates are parsed once: each page file with the layout.
var templates = func() map[string]*template.Template {
	layout := template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/parts.html"))
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		panic(err)
	}
	out := map[string]*template.Template{}
	for _, n := range names {
		base := path.Base(n)
		if base == "layout.html" || base == "parts.html" {
			continue
		}
		out[base] = template.Must(template.Must(layout.Clone()).ParseFS(templateFS, n))
	}
	return out
}()

// renderBuffers keep the buffers pages are rendered into (growing a new one to a
// page's 20 KB was about 5 % of a domain page's CPU).
var renderBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// render writes a page; the template runs into a buffer first, so a failure is a
// clean 500 rather than half a page.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	t := templates[name]
	buf := renderBuffers.Get().(*bytes.Buffer)
	defer func() {
		buf.Reset()
		renderBuffers.Put(buf)
	}()
	if t == nil {
		s.log.Error("web: no template", "name", name)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if err := t.ExecuteTemplate(buf, "layout.html", p); err != nil {
		s.log.Error("web: template", "name", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write(buf.Bytes())
	}
}

// writeJSON writes v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, `{"error":"internal error"}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// wantsCSV reports whether the client asked for CSV (?format=csv).
func wantsCSV(r *http.Request) (bool, error) {
	switch f := r.URL.Query().Get("format"); f {
	case "", "json":
		return false, nil
	case "csv":
		return true, nil
	default:
		return false, badRequest("format %q: want json or csv", f)
	}
}

// writeTable answers a table: JSON (the envelope holds it under key) or CSV with a
// header of the rows' JSON field names.
func writeTable[T any](w http.ResponseWriter, r *http.Request, name string, envelope map[string]any, key string, rows []T) error {
	asCSV, err := wantsCSV(r)
	if err != nil {
		return err
	}
	if !asCSV {
		if rows == nil {
			rows = []T{}
		}
		envelope[key] = rows
		writeJSON(w, http.StatusOK, envelope)
		return nil
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", name+".csv"))
	cw := csv.NewWriter(w)
	var zero T
	cw.Write(csvHeader(reflect.TypeOf(zero)))
	for i := range rows {
		cw.Write(csvCells(reflect.ValueOf(rows[i])))
	}
	cw.Flush()
	return cw.Error()
}

// csvHeader returns the JSON names of a flat struct's fields.
func csvHeader(t reflect.Type) []string {
	var out []string
	for i := 0; i < t.NumField(); i++ {
		if name := jsonName(t.Field(i)); name != "" {
			out = append(out, name)
		}
	}
	return out
}

func csvCells(v reflect.Value) []string {
	var out []string
	for i := 0; i < v.NumField(); i++ {
		if jsonName(v.Type().Field(i)) == "" {
			continue
		}
		f := v.Field(i)
		switch f.Kind() {
		case reflect.Float64:
			out = append(out, strconv.FormatFloat(f.Float(), 'f', -1, 64))
		case reflect.Bool:
			out = append(out, boolCell(f.Bool()))
		default:
			if t, ok := f.Interface().(time.Time); ok {
				out = append(out, rfc3339(t))
				continue
			}
			out = append(out, fmt.Sprint(f.Interface()))
		}
	}
	return out
}

func jsonName(f reflect.StructField) string {
	tag := f.Tag.Get("json")
	name, _, _ := strings.Cut(tag, ",")
	if name == "-" || !f.IsExported() {
		return ""
	}
	if name == "" {
		return f.Name
	}
	return name
}

func boolCell(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// asset is one embedded static file, ready to serve.
type asset struct {
	body, gz []byte
	ctype    string
	etag     string
}

// loadAssets reads the static files once, with their ETags and gzip forms.
func loadAssets() (map[string]asset, error) {
	out := map[string]asset{}
	err := fs.WalkDir(subFS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(subFS(), p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		a := asset{body: b, etag: `"` + hex.EncodeToString(sum[:8]) + `"`, ctype: mime.TypeByExtension(path.Ext(p))}
		if a.ctype == "" {
			a.ctype = "application/octet-stream"
		}
		if strings.HasSuffix(p, ".json") {
			a.ctype = "application/json"
		}
		if len(b) > 1024 {
			var z bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&z, gzip.BestCompression)
			zw.Write(b)
			zw.Close()
			a.gz = z.Bytes()
		}
		out[p] = a
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("web: static files: %w", err)
	}
	return out, nil
}

// acceptsGzip reports whether the client takes gzip.
func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.TrimSpace(enc) == "gzip" && strings.ReplaceAll(q, " ", "") != "q=0" {
			return true
		}
	}
	return false
}

func (s *Server) static(w http.ResponseWriter, r *http.Request) error {
	return s.serveAsset(w, r, r.PathValue("file"))
}

func (s *Server) favicon(w http.ResponseWriter, r *http.Request) error {
	return s.serveAsset(w, r, "favicon.svg")
}

func (s *Server) serveAsset(w http.ResponseWriter, r *http.Request, name string) error {
	a, ok := s.assets[name]
	if !ok {
		return notFound("no file %s", name)
	}
	h := w.Header()
	h.Set("Content-Type", a.ctype)
	h.Set("ETag", a.etag)
	h.Set("Cache-Control", "public, max-age=3600")
	h.Add("Vary", "Accept-Encoding")
	if r.Header.Get("If-None-Match") == a.etag {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	body := a.body
	if a.gz != nil && acceptsGzip(r) {
		h.Set("Content-Encoding", "gzip")
		body = a.gz
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if r.Method != http.MethodHead {
		w.Write(body)
	}
	return nil
}

// countryNames reads the country names of the map's GeoJSON (properties cc and name).
func countryNames(assets map[string]asset) map[string]string {
	out := map[string]string{}
	a, ok := assets["vendor/world.geo.json"]
	if !ok {
		return out
	}
	var doc struct {
		Features []struct {
			Properties struct {
				CC   string `json:"cc"`
				Name string `json:"name"`
			} `json:"properties"`
		} `json:"features"`
	}
	if json.Unmarshal(a.body, &doc) == nil {
		for _, f := range doc.Features {
			if f.Properties.CC != "" {
				out[f.Properties.CC] = f.Properties.Name
			}
		}
	}
	return out
}

// countryName returns a country's name, or its code.
func (s *Server) countryName(cc string) string {
	if n := s.names[cc]; n != "" {
		return n
	}
	return cc
}

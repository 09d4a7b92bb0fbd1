package web

import (
	"bytes"
	"net/http"
	"strings"
	"text/template"

	"github.com/v6matrix/v6matrix/internal/infopage"
	"github.com/v6matrix/v6matrix/internal/result"
)

// aboutData is the info page's: the crawler's description, the form's token, and what
// a submission came to.
type aboutData struct {
	Info    infopage.Config
	Token   string
	Outcome infopage.Outcome
}

func (s *Server) aboutPage(w http.ResponseWriter, r *http.Request) error {
	s.render(w, r, http.StatusOK, "about.html", page{Title: "About the crawler", Nav: "about",
		Data: aboutData{Info: s.info.Config(), Token: s.info.Token()}})
	return nil
}

func (s *Server) optOut(w http.ResponseWriter, r *http.Request) error {
	o := s.info.Take(r)
	s.render(w, r, o.Status, "about.html", page{Title: "About the crawler", Nav: "about",
		Data: aboutData{Info: s.info.Config(), Token: s.info.Token(), Outcome: o}})
	return nil
}

// badgeSVG is the status badge (text/template: the values are fixed words and a
// normalised domain name, escaped by xmlEscape).
var badgeSVG = template.Must(template.New("badge").Funcs(template.FuncMap{"x": xmlEscape}).Parse(
	`<svg xmlns="http://www.w3.org/2000/svg" width="{{.Width}}" height="20" role="img" aria-label="IPv6: {{x .Text}}">` +
		`<title>{{x .Title}}</title><rect width="{{.Width}}" height="20" rx="3" fill="#555"/>` +
		`<rect x="38" width="{{.Right}}" height="20" rx="3" fill="{{.Color}}"/><rect x="38" width="4" height="20" fill="{{.Color}}"/>` +
		`<g fill="#fff" font-family="Verdana,DejaVu Sans,sans-serif" font-size="11">` +
		`<text x="6" y="14">IPv6</text><text x="44" y="14">{{x .Text}}</text></g></svg>`))

func xmlEscape(s string) string {
	var b bytes.Buffer
	template.HTMLEscape(&b, []byte(s))
	return b.String()
}

// badge serves /badge/{domain}.svg: the roles with IPv6 in the latest run.
func (s *Server) badge(w http.ResponseWriter, r *http.Request) error {
	file := r.PathValue("file")
	if !strings.HasSuffix(file, ".svg") {
		return notFound("badges are /badge/<domain>.svg")
	}
	name, err := domainName(strings.TrimSuffix(file, ".svg"))
	if err != nil {
		return err
	}
	text, color, status := "not measured", "#9f9f9f", http.StatusNotFound
	title := name + " is not in the latest run"
	if run, err := s.latest(r.Context()); err == nil {
		if d, err := s.st.DomainSummary(r.Context(), run.ID, name); err == nil {
			status = http.StatusOK
			text, color = badgeText(&d)
			title = name + " in run " + run.Started.UTC().Format("2006-01-02") + ": " + text
		}
	}
	var buf bytes.Buffer
	width := 38 + 12 + 7*len(text)
	if err := badgeSVG.Execute(&buf, map[string]any{"Width": width, "Right": width - 38, "Color": color, "Text": text, "Title": title}); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "image/svg+xml")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
	return nil
}

// badgeText words a domain's summary: the roles with IPv6, or why there are none.
func badgeText(d *result.DomainSummary) (text, color string) {
	if d.Status != result.StatusOK {
		return string(d.Status), "#9f9f9f"
	}
	var roles []string
	unknown := false
	for i, r := range result.Roles {
		switch d.Roles[i].IPv6 {
		case result.Yes:
			roles = append(roles, strings.ToUpper(string(r)))
		case result.Unknown:
			unknown = true
		}
	}
	switch {
	case len(roles) == 4:
		return "all four", "#2e7d32"
	case len(roles) > 0:
		return strings.Join(roles, " "), "#1565c0"
	case unknown:
		return "unknown", "#9f9f9f"
	}
	return "none", "#c62828"
}

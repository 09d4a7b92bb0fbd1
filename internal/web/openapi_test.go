package web

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// schema is the part of an OpenAPI (JSON Schema) object the test checks.
type schema struct {
	Ref        string             `json:"$ref"`
	Type       string             `json:"type"`
	Required   []string           `json:"required"`
	Properties map[string]*schema `json:"properties"`
	Items      *schema            `json:"items"`
	OneOf      []*schema          `json:"oneOf"`
	Enum       []any              `json:"enum"`
}

type openapiDoc struct {
	Paths map[string]map[string]struct {
		Parameters []struct {
			Name, In string
			Schema   *schema `json:"schema"`
		} `json:"parameters"`
		Responses map[string]struct {
			Content map[string]struct {
				Schema *schema `json:"schema"`
			} `json:"content"`
		} `json:"responses"`
	} `json:"paths"`
	Components struct {
		Schemas map[string]*schema `json:"schemas"`
	} `json:"components"`
}

// validate checks v against s: types, required properties, items, oneOf; it returns
// the problems found.
func (d *openapiDoc) validate(s *schema, v any, at string) []string {
	if s.Ref != "" {
		return d.validate(d.Components.Schemas[strings.TrimPrefix(s.Ref, "#/components/schemas/")], v, at)
	}
	if len(s.OneOf) > 0 {
		for _, o := range s.OneOf {
			if len(d.validate(o, v, at)) == 0 {
				return nil
			}
		}
		return []string{at + ": matches no oneOf alternative"}
	}
	var errs []string
	switch s.Type {
	case "object":
		m, ok := v.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: %T, want an object", at, v)}
		}
		for _, r := range s.Required {
			if _, ok := m[r]; !ok {
				errs = append(errs, at+": lacks required "+r)
			}
		}
		for k, ps := range s.Properties {
			if x, ok := m[k]; ok {
				errs = append(errs, d.validate(ps, x, at+"."+k)...)
			}
		}
	case "array":
		a, ok := v.([]any)
		if !ok {
			return []string{fmt.Sprintf("%s: %T, want an array", at, v)}
		}
		for i, x := range a {
			if i < 5 && s.Items != nil {
				errs = append(errs, d.validate(s.Items, x, fmt.Sprintf("%s[%d]", at, i))...)
			}
		}
	case "string":
		if _, ok := v.(string); !ok {
			errs = append(errs, fmt.Sprintf("%s: %T, want a string", at, v))
		}
	case "integer":
		if f, ok := v.(float64); !ok || f != float64(int64(f)) {
			errs = append(errs, fmt.Sprintf("%s: %v, want an integer", at, v))
		}
	case "number":
		if _, ok := v.(float64); !ok {
			errs = append(errs, fmt.Sprintf("%s: %T, want a number", at, v))
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			errs = append(errs, fmt.Sprintf("%s: %T, want a boolean", at, v))
		}
	}
	return errs
}

// TestOpenAPI: the document lists exactly the API routes of the route table, with
// their path parameters, and what each route answers matches its documented schema.
func TestOpenAPI(t *testing.T) {
	f := getFixture(t)
	_, body := f.get(t, "/api/v1/openapi.json")
	var doc openapiDoc
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	var routes []string
	for _, rt := range f.web.routes() {
		if rt.api {
			method, p, _ := strings.Cut(rt.pattern, " ")
			routes = append(routes, p)
			op, ok := doc.Paths[p][strings.ToLower(method)]
			if !ok {
				t.Errorf("route %s is not in openapi.json", rt.pattern)
				continue
			}
			for _, m := range regexp.MustCompile(`\{(\w+)\}`).FindAllStringSubmatch(p, -1) {
				if !slices.ContainsFunc(op.Parameters, func(x struct {
					Name, In string
					Schema   *schema `json:"schema"`
				}) bool {
					return x.Name == m[1] && x.In == "path"
				}) {
					t.Errorf("%s: path parameter %s not documented", p, m[1])
				}
			}
		}
	}
	for p := range doc.Paths {
		if !slices.Contains(routes, p) {
			t.Errorf("openapi.json documents %s, which no route serves", p)
		}
	}

	// Each documented JSON answer, requested with sample parameters and the documented
	// query parameters, matches its schema.
	runs := strconv.FormatInt(f.runs[0], 10)
	samples := map[string]string{"{run}": runs, "{other}": "latest", "{tld}": "de", "{name}": "d0000001.com", "{file}": "ns.csv"}
	for p, ops := range doc.Paths {
		op := ops["get"]
		resp := op.Responses["200"]
		js, ok := resp.Content["application/json"]
		if !ok {
			continue
		}
		url := p
		for k, v := range samples {
			url = strings.ReplaceAll(url, k, v)
		}
		queries := []string{""}
		if strings.HasSuffix(p, "/diff/{other}") {
			queries = append(queries, "?role=www&change=lost")
		}
		for _, q := range queries {
			res, body := f.get(t, url+q)
			if res.StatusCode != 200 {
				t.Errorf("%s%s: %d", url, q, res.StatusCode)
				continue
			}
			var v any
			if err := json.Unmarshal([]byte(body), &v); err != nil {
				t.Errorf("%s%s: %v", url, q, err)
				continue
			}
			for _, e := range doc.validate(js.Schema, v, url+q) {
				t.Error(e)
			}
		}
		// A documented 404 is JSON with an error.
		if _, ok := op.Responses["404"]; ok && strings.Contains(p, "{run}") {
			res, body := f.get(t, strings.ReplaceAll(url, runs, "999999"))
			if res.StatusCode != 404 || !strings.Contains(body, `"error"`) {
				t.Errorf("%s with an unknown run: %d %s", p, res.StatusCode, body)
			}
		}
	}
}

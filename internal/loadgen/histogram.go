package loadgen

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"slices"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Histogram is one label value's cumulative bucket counts of a Prometheus histogram.
type Histogram struct {
	Bounds []float64 // upper bounds, ascending, +Inf last
	Counts []float64 // cumulative counts
}

// Count returns the number of observations.
func (h Histogram) Count() float64 {
	if len(h.Counts) == 0 {
		return 0
	}
	return h.Counts[len(h.Counts)-1]
}

// Sub returns h minus an earlier scrape of it.
func (h Histogram) Sub(e Histogram) Histogram {
	out := Histogram{Bounds: h.Bounds, Counts: slices.Clone(h.Counts)}
	for i := range out.Counts {
		if i < len(e.Counts) {
			out.Counts[i] -= e.Counts[i]
		}
	}
	return out
}

// Quantile estimates a quantile by linear interpolation within the bucket, as
// Prometheus's histogram_quantile does; +Inf when it falls in the last bucket.
func (h Histogram) Quantile(q float64) float64 {
	n := h.Count()
	if n == 0 {
		return math.NaN()
	}
	rank := q * n
	lo, below := 0.0, 0.0
	for i, c := range h.Counts {
		if c >= rank {
			if math.IsInf(h.Bounds[i], 1) {
				return math.Inf(1)
			}
			return lo + (h.Bounds[i]-lo)*(rank-below)/max(c-below, 1e-9)
		}
		lo, below = h.Bounds[i], c
	}
	return math.Inf(1)
}

// Within returns the share of observations at or below bound (a bucket's bound).
func (h Histogram) Within(bound float64) float64 {
	for i, b := range h.Bounds {
		if b == bound {
			return h.Counts[i] / max(h.Count(), 1)
		}
	}
	return math.NaN()
}

// Scrape reads a histogram metric from a /metrics URL, summed per value of label.
func Scrape(ctx context.Context, url, metric, label string) (map[string]Histogram, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	fam, ok := fams[metric]
	if !ok {
		return nil, fmt.Errorf("scrape %s: no metric %s", url, metric)
	}
	out := map[string]Histogram{}
	for _, m := range fam.GetMetric() {
		key := ""
		for _, l := range m.GetLabel() {
			if l.GetName() == label {
				key = l.GetValue()
			}
		}
		h := out[key]
		bs := m.GetHistogram().GetBucket()
		if h.Bounds == nil {
			for _, b := range bs {
				h.Bounds = append(h.Bounds, b.GetUpperBound())
				h.Counts = append(h.Counts, 0)
			}
			h.Bounds = append(h.Bounds, math.Inf(1))
			h.Counts = append(h.Counts, 0)
		}
		for i, b := range bs {
			h.Counts[i] += float64(b.GetCumulativeCount())
		}
		h.Counts[len(h.Counts)-1] += float64(m.GetHistogram().GetSampleCount())
		out[key] = h
	}
	return out, nil
}

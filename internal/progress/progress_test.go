package progress

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestLine(t *testing.T) {
	b := &Bar{label: "crawl"}
	tests := []struct {
		name    string
		c       Counts
		elapsed time.Duration
		want    string
	}{
		{"start", Counts{0, 100, 0}, 0, "crawl [>                       ] 0/100   0.0%      0/s ETA --:-- errors 0"},
		{"half", Counts{50, 100, 3}, 10 * time.Second, "crawl [============>           ] 50/100  50.0%      5/s ETA 0:10 errors 3"},
		{"done", Counts{100, 100, 0}, 10 * time.Second, "crawl [========================] 100/100 100.0%     10/s ETA 0:00 errors 0"},
		{"hours", Counts{1, 10000, 0}, time.Second, "crawl [>                       ] 1/10000   0.0%      1/s ETA 2:46:39 errors 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := b.Line(tt.c, tt.elapsed); got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestStartStop(t *testing.T) {
	var buf bytes.Buffer
	b := Start(&buf, "x", time.Hour, func() Counts { return Counts{Done: 2, Total: 2} })
	b.Stop()
	if out := buf.String(); !strings.Contains(out, "2/2 100.0%") || !strings.HasSuffix(out, "\n") {
		t.Errorf("final line %q", out)
	}
}

package progress

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestLine(t *testing.T) {
	tests := []struct {
		name    string
		c       Counts
		elapsed time.Duration
		want    string
	}{
		{"start", Counts{0, 100, 0, "", 0}, 0, "crawl [>                       ] 0/100   0.0%      0/s ETA --:-- errors 0"},
		{"half", Counts{50, 100, 3, "", 0}, 10 * time.Second, "crawl [============>           ] 50/100  50.0%      5/s ETA 0:10 errors 3"},
		{"done", Counts{100, 100, 0, "", 0}, 10 * time.Second, "crawl [========================] 100/100 100.0%     10/s ETA 0:00 errors 0"},
		{"hours", Counts{1, 10000, 0, "", 0}, time.Second, "crawl [>                       ] 1/10000   0.0%      1/s ETA 2:46:39 errors 0"},
		{"note", Counts{1, 2, 0, "at least 23m0s: 2001:db8:ffdd::/48 has 876 addresses", 0}, time.Second, "crawl [============>           ] 1/2  50.0%      1/s ETA 0:01 errors 0  at least 23m0s: 2001:db8:ffdd::/48 has 876 addresses"},
		// 2,437 probes left at 306/s, but the bound says 8 minutes more.
		{"least", Counts{654985, 657422, 0, "", 8*time.Minute + 7*time.Second}, 12 * time.Minute, "crawl [=======================>] 654985/657422  99.6%    910/s ETA 8:07 errors 0"},
		{"least, nothing moves", Counts{0, 5, 0, "", 90 * time.Second}, 0, "crawl [>                       ] 0/5   0.0%      0/s ETA 1:30 errors 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &Bar{label: "crawl"}
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

// TestETASlowTail follows a probe stage whose fast half finishes in 8 s and whose slow
// half takes one item every 5 s: the ETA must grow with the slow rate, and never read
// 0:00 while items remain (it read 0:08 at 50 % and then 0:00 for 25 s).
func TestETASlowTail(t *testing.T) {
	b := &Bar{label: "probe"}
	const total = 20
	var last string
	for s := 0; s <= 58; s++ {
		done := int64(min(s*10/8, 10)) // 10 items in the first 8 s
		if s > 8 {
			done = 10 + int64((s-8)/5) // then one every 5 s: 20 at 58 s
		}
		line := b.Line(Counts{Done: done, Total: total}, time.Duration(s)*time.Second)
		_, last, _ = strings.Cut(line, "ETA ")
		last, _, _ = strings.Cut(last, " ")
		if done < total && last == "0:00" {
			t.Fatalf("at %d s, %d/%d done: ETA 0:00 while work remains (%s)", s, done, total, line)
		}
		if s == 40 { // 16 done, 4 left at one per 5 s: about 20 s
			d, err := time.ParseDuration(strings.Replace(last, ":", "m", 1) + "s")
			if err != nil || d < 12*time.Second || d > 40*time.Second {
				t.Errorf("at 40 s: ETA %q, want about 0:20 (%s)", last, line)
			}
		}
	}
	if last != "0:00" {
		t.Errorf("ETA when done: %q, want 0:00", last)
	}
}

func TestStartLog(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	stop := StartLog(log, "crawl", 10*time.Millisecond, func() Counts { return Counts{Done: 1, Total: 4} })
	time.Sleep(50 * time.Millisecond)
	stop()
	if out := buf.String(); !strings.Contains(out, "msg=progress stage=crawl done=1 total=4") {
		t.Errorf("log %q: want progress lines", out)
	}
}

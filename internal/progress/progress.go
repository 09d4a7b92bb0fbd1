// Package progress draws a one-line progress bar on a terminal: count, total, rate,
// ETA and errors, redrawn in place a few times a second; without a terminal it logs
// the same line through log/slog every few seconds.
package progress

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// Counts is what the bar shows; the caller's function returns the current values.
type Counts struct {
	Done, Total, Errors int64
	// Note is shown after the counts when set (the probe stage's lower bound).
	Note string
	// Least is the least time left whatever the rate (the probe stage's lower bound
	// less the time spent): the ETA is never shorter. A polite crawl's last network
	// goes at its own pace, far below the rate of the rest.
	Least time.Duration
}

// Bar redraws itself until Stop.
type Bar struct {
	w     io.Writer
	label string
	read  func() Counts
	start time.Time
	stop  chan struct{}
	wg    sync.WaitGroup
	now   func() time.Time
	est   estimator
}

// Start draws the bar on w every interval until Stop.
func Start(w io.Writer, label string, interval time.Duration, read func() Counts) *Bar {
	b := &Bar{w: w, label: label, read: read, start: time.Now(), stop: make(chan struct{}), now: time.Now}
	b.every(interval, func(c Counts, line string) { fmt.Fprint(b.w, "\r"+line+"\x1b[K") })
	return b
}

// every calls show with the counts and their line every interval until b.stop closes.
func (b *Bar) every(interval time.Duration, show func(c Counts, line string)) {
	b.wg.Go(func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				c := b.read()
				show(c, b.Line(c, b.now().Sub(b.start)))
			case <-b.stop:
				return
			}
		}
	})
}

// Stop draws the final state and ends the line.
func (b *Bar) Stop() {
	close(b.stop)
	b.wg.Wait()
	fmt.Fprintln(b.w, "\r"+b.Line(b.read(), b.now().Sub(b.start))+"\x1b[K")
}

// Line formats one state of the bar, e.g.
// "crawl [=========>          ] 4500/10000  45.0%  1500/s  ETA 0:04  errors 12".
func (b *Bar) Line(c Counts, elapsed time.Duration) string {
	const width = 24
	frac := 0.0
	if c.Total > 0 {
		frac = min(float64(c.Done)/float64(c.Total), 1)
	}
	filled := int(frac * width)
	bar := strings.Repeat("=", filled)
	if filled < width {
		bar += ">" + strings.Repeat(" ", width-filled-1)
	}
	rate := b.est.rate(elapsed, c.Done)
	line := fmt.Sprintf("%s [%s] %d/%d %5.1f%% %6.0f/s ETA %s errors %d",
		b.label, bar, c.Done, c.Total, frac*100, rate, eta(c, rate), c.Errors)
	if c.Note != "" {
		line += "  " + c.Note
	}
	return line
}

// eta formats the time left at the rate; "--:--" when nothing moves, and never 0:00
// while work remains (the last slow items would otherwise sit at 0:00).
func eta(c Counts, rate float64) string {
	switch {
	case c.Done >= c.Total && c.Total > 0:
		return "0:00"
	case c.Total < c.Done:
		return "--:--"
	case rate <= 0:
		if c.Least > 0 {
			return clock(c.Least)
		}
		return "--:--"
	}
	return clock(max(time.Duration(float64(c.Total-c.Done)/rate*float64(time.Second)), time.Second, c.Least))
}

// window is how far back the rate looks: the probe stage runs its fast probes (PTR,
// GeoIP) first and its slow ones (paths) last, so the average since the start says
// little about the time left; the recent rate follows the change.
const window = 20 * time.Second

// estimator keeps recent (elapsed, done) samples and gives the rate over the window.
type estimator struct {
	mu      sync.Mutex
	samples []sample
}

type sample struct {
	at   time.Duration
	done int64
}

// rate records a sample and returns the rate since the oldest sample in the window
// (since the start, at first).
func (e *estimator) rate(at time.Duration, done int64) float64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.samples) == 0 {
		e.samples = append(e.samples, sample{0, 0})
	}
	if last := e.samples[len(e.samples)-1]; at > last.at {
		e.samples = append(e.samples, sample{at, done})
	}
	for len(e.samples) > 2 && e.samples[1].at <= at-window {
		e.samples = e.samples[1:]
	}
	base := e.samples[0]
	if d := (at - base.at).Seconds(); d > 0 {
		return float64(done-base.done) / d
	}
	return 0
}

// StartLog logs the line through log every interval until the returned stop is called
// (for runs without a terminal: a progress line every interval instead of a bar).
func StartLog(log *slog.Logger, label string, interval time.Duration, read func() Counts) (stop func()) {
	b := &Bar{label: label, read: read, start: time.Now(), stop: make(chan struct{}), now: time.Now}
	b.every(interval, func(c Counts, line string) {
		log.Info("progress", "stage", label, "done", c.Done, "total", c.Total, "errors", c.Errors, "line", line)
	})
	return func() {
		close(b.stop)
		b.wg.Wait()
	}
}

func clock(d time.Duration) string {
	s := int(d.Round(time.Second).Seconds())
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}

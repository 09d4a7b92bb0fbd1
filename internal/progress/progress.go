// Package progress draws a one-line progress bar on a terminal: count, total, rate,
// ETA and errors, redrawn in place a few times a second.
package progress

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Counts is what the bar shows; the caller's function returns the current values.
type Counts struct {
	Done, Total, Errors int64
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
}

// Start draws the bar on w every interval until Stop.
func Start(w io.Writer, label string, interval time.Duration, read func() Counts) *Bar {
	b := &Bar{w: w, label: label, read: read, start: time.Now(), stop: make(chan struct{}), now: time.Now}
	b.wg.Go(func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				fmt.Fprint(b.w, "\r"+b.Line(b.read(), b.now().Sub(b.start))+"\x1b[K")
			case <-b.stop:
				return
			}
		}
	})
	return b
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
	rate := 0.0
	if s := elapsed.Seconds(); s > 0 {
		rate = float64(c.Done) / s
	}
	eta := "--:--"
	if rate > 0 && c.Total >= c.Done {
		eta = clock(time.Duration(float64(c.Total-c.Done) / rate * float64(time.Second)))
	}
	return fmt.Sprintf("%s [%s] %d/%d %5.1f%% %6.0f/s ETA %s errors %d",
		b.label, bar, c.Done, c.Total, frac*100, rate, eta, c.Errors)
}

func clock(d time.Duration) string {
	s := int(d.Round(time.Second).Seconds())
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}

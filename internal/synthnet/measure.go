package synthnet

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// RunStats is what one run in the vantage cost.
type RunStats struct {
	Name     string
	ExitCode int
	Wall     time.Duration
	// CPU is the user and system time of the run's process (getrusage of children).
	CPU time.Duration
	// PeakRSSKiB is the largest VmHWM of a process in the vantage, sampled each second.
	PeakRSSKiB int64
	// Sent is the number of packets the vantage sent in each second of the run.
	Sent []uint64
	// MachineBusy is the fraction of the machine's CPU time not idle during the run.
	MachineBusy float64
	// LoadAvg is /proc/loadavg's first three fields at the end.
	LoadAvg string
	// LowerBound is the politeness lower bound the crawler logged (key lower_bound), 0
	// when it logs none.
	LowerBound time.Duration
	// Stdout is what the run printed (the reference's report).
	Stdout []byte
}

// IdleSeconds returns how many whole seconds of the run sent nothing, and the longest
// such stretch with the second it began (the process runs, so work remains).
func (s RunStats) IdleSeconds() (total, longest, at int) {
	run := 0
	for i, n := range s.Sent {
		if n > 0 {
			run = 0
			continue
		}
		total++
		run++
		if run > longest {
			longest, at = run, i-run+1
		}
	}
	return total, longest, at
}

// RunInVantage runs argv in the vantage and measures it; its stderr is copied to logPath.
func (w *World) RunInVantage(ctx context.Context, name string, argv []string, logPath string) (RunStats, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return RunStats{Name: name}, err
	}
	defer logf.Close()
	var stdout bytes.Buffer
	st, err := w.measure(ctx, name, func(ctx context.Context) (int, time.Time, error) {
		code, err := w.Lab.Exec(ctx, argv, nil, &stdout, logf)
		return code, time.Now(), err
	})
	st.Stdout = stdout.Bytes()
	if err != nil {
		return st, err
	}
	logf.Seek(0, io.SeekStart)
	st.LowerBound = lowerBound(logf)
	return st, nil
}

// measure runs do, which starts processes in the vantage and waits for them, and
// measures it: the wall time up to the end do returns, the CPU of the children it
// waited for, the vantage's packets, its processes' peak RSS and the machine's load.
func (w *World) measure(ctx context.Context, name string, do func(context.Context) (code int, end time.Time, err error)) (RunStats, error) {
	st := RunStats{Name: name}
	ns, err := netns.GetFromName(w.Lab.VantageNS())
	if err != nil {
		return st, fmt.Errorf("vantage namespace: %w", err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return st, fmt.Errorf("vantage netlink: %w", err)
	}
	defer h.Close()
	var nsStat syscall.Stat_t
	if err := syscall.Stat(filepath.Join("/run/netns", w.Lab.VantageNS()), &nsStat); err != nil {
		return st, fmt.Errorf("vantage namespace: %w", err)
	}
	var before syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_CHILDREN, &before)
	busy0, total0 := cpuTimes()
	tx0, err := txPackets(h)
	if err != nil {
		return st, err
	}
	type result struct {
		code int
		end  time.Time
		err  error
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		code, end, err := do(ctx)
		done <- result{code, end, err}
	}()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	last := tx0
	var res result
	for {
		select {
		case res = <-done:
		case <-tick.C:
			tx, terr := txPackets(h)
			if terr == nil {
				st.Sent = append(st.Sent, tx-last)
				last = tx
			}
			st.PeakRSSKiB = max(st.PeakRSSKiB, peakRSSIn(nsStat.Ino))
			continue
		}
		break
	}
	st.ExitCode = res.code
	st.Wall = res.end.Sub(start)
	var after syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_CHILDREN, &after)
	st.CPU = tvDur(after.Utime) - tvDur(before.Utime) + tvDur(after.Stime) - tvDur(before.Stime)
	busy1, total1 := cpuTimes()
	if total1 > total0 {
		st.MachineBusy = float64(busy1-busy0) / float64(total1-total0)
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		st.LoadAvg = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	return st, res.err
}

func tvDur(tv syscall.Timeval) time.Duration {
	return time.Duration(tv.Sec)*time.Second + time.Duration(tv.Usec)*time.Microsecond
}

func txPackets(h *netlink.Handle) (uint64, error) {
	l, err := h.LinkByName(VantageLink)
	if err != nil {
		return 0, fmt.Errorf("vantage link %s: %w", VantageLink, err)
	}
	return l.Attrs().Statistics.TxPackets, nil
}

// peakRSSIn returns the largest VmHWM (KiB) of the processes in the network namespace
// with inode ino.
func peakRSSIn(ino uint64) int64 {
	ents, _ := os.ReadDir("/proc")
	var peak int64
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		var s syscall.Stat_t
		if syscall.Stat("/proc/"+e.Name()+"/ns/net", &s) != nil || s.Ino != ino {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/status")
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
				f := strings.Fields(rest)
				if len(f) > 0 {
					n, _ := strconv.ParseInt(f[0], 10, 64)
					peak = max(peak, n)
				}
			}
		}
	}
	return peak
}

// cpuTimes returns the machine's busy and total CPU ticks (/proc/stat).
func cpuTimes() (busy, total uint64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	for i, v := range f[1:] {
		n, _ := strconv.ParseUint(v, 10, 64)
		total += n
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return busy, total
}

var lowerBoundRE = regexp.MustCompile(`"?lower_bound"?[=:]"?([0-9][^" ,}]*)`)

// lowerBound returns the last lower_bound a log reports (a duration, or seconds), or 0.
func lowerBound(r io.Reader) time.Duration {
	var lb time.Duration
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		m := lowerBoundRE.FindSubmatch(sc.Bytes())
		if m == nil {
			continue
		}
		if d, err := time.ParseDuration(string(m[1])); err == nil {
			lb = d
		} else if s, err := strconv.ParseFloat(string(m[1]), 64); err == nil {
			lb = time.Duration(s * float64(time.Second))
		}
	}
	return lb
}

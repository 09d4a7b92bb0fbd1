package web

import (
	"context"
	"fmt"
	"hash/fnv"
	"strings"
	"time"

	"github.com/v6matrix/v6matrix/internal/store"
)

// stageJobs is the progress of one stage (of one vantage) of a distributed run: its
// jobs by River's state. Total counts every state, pending and cancelled included.
type stageJobs struct {
	Stage     string `json:"stage"`
	Vantage   string `json:"vantage"` // "" for the stages of the whole run
	Done      int    `json:"done"`    // completed
	Total     int    `json:"total"`
	Running   int    `json:"running"`
	Available int    `json:"available"`
	Scheduled int    `json:"scheduled"` // snoozed, or waiting for a retry's time
	Retryable int    `json:"retryable"`
	Discarded int    `json:"discarded"` // out of attempts: v6matrix crawl --resume retries them
	Cancelled int    `json:"cancelled"`
}

// runJobs is the progress of a distributed run, stage by stage in the order they run
// (none for a run that is not distributed); a CSV cell shows it as one line.
type runJobs []stageJobs

// progressOf groups a run's job counts (distrib.Progress: by stage in order, then
// vantage and state) by stage and vantage.
func progressOf(counts []store.JobCount) runJobs {
	out := runJobs{}
	for _, c := range counts {
		if n := len(out); n == 0 || out[n-1].Stage != c.Stage || out[n-1].Vantage != c.Vantage {
			out = append(out, stageJobs{Stage: c.Stage, Vantage: c.Vantage})
		}
		s := &out[len(out)-1]
		s.Total += c.Jobs
		for _, st := range s.states() {
			if st.name == c.State {
				*st.n += c.Jobs
			}
		}
	}
	return out
}

// stateCount is the count of jobs in one of River's states.
type stateCount struct {
	name string
	n    *int
}

// states are the stage's counts by River's state, completed first.
func (s *stageJobs) states() []stateCount {
	return []stateCount{{"completed", &s.Done}, {"running", &s.Running}, {"available", &s.Available},
		{"scheduled", &s.Scheduled}, {"retryable", &s.Retryable}, {"discarded", &s.Discarded}, {"cancelled", &s.Cancelled}}
}

// String is the progress in one line: "dns 3/10 (running 2, available 5); probe ams 0/4
// (available 4)".
func (j runJobs) String() string {
	var b strings.Builder
	for i := range j {
		s := &j[i]
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(s.Stage)
		if s.Vantage != "" {
			b.WriteString(" " + s.Vantage)
		}
		fmt.Fprintf(&b, " %d/%d", s.Done, s.Total)
		var open []string
		for _, st := range s.states()[1:] {
			if *st.n > 0 {
				open = append(open, fmt.Sprintf("%s %d", st.name, *st.n))
			}
		}
		if len(open) > 0 {
			b.WriteString(" (" + strings.Join(open, ", ") + ")")
		}
	}
	return b.String()
}

// jobsEntry is a run's progress as read at a time.
type jobsEntry struct {
	at   time.Time
	jobs runJobs
}

// active says whether a run may still have work: neither done nor failed.
func active(r store.Run) bool { return r.State != store.RunDone && r.State != store.RunFailed }

// runJobs returns the progress of a run not done (none without Config.Jobs), read
// again when versionTTL has passed: the jobs change while the store's version does not.
func (s *Server) runJobs(ctx context.Context, r store.Run) (runJobs, error) {
	if s.cfg.Jobs == nil || !active(r) {
		return runJobs{}, nil
	}
	s.mu.Lock()
	e, ok := s.jobs[r.ID]
	s.mu.Unlock()
	if ok && time.Since(e.at) < versionTTL {
		return e.jobs, nil
	}
	counts, err := s.cfg.Jobs(ctx, r.ID)
	if err != nil {
		return nil, err
	}
	jobs := progressOf(counts)
	s.mu.Lock()
	s.jobs[r.ID] = jobsEntry{time.Now(), jobs}
	s.mu.Unlock()
	return jobs, nil
}

// jobsKey fingerprints the progress of the runs not done, for the cache keys of the
// answers that show it: a job done changes their key, not the store's version.
func (s *Server) jobsKey(ctx context.Context) (string, error) {
	s.mu.Lock()
	runs := s.activeRuns
	s.mu.Unlock()
	if s.cfg.Jobs == nil || len(runs) == 0 {
		return "", nil
	}
	h := fnv.New64a()
	for _, r := range runs {
		jobs, err := s.runJobs(ctx, r)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%d %s;", r.ID, jobs)
	}
	return fmt.Sprintf("%x", h.Sum64()), nil
}

package crawl

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"

	"github.com/v6matrix/v6matrix/internal/domains"
	"github.com/v6matrix/v6matrix/internal/store"
)

// LoadOptions selects what part of a list is crawled.
type LoadOptions struct {
	TLDs map[string]bool // only these TLDs (last label); empty = all
	Top  int             // keep the Top best-ranked domains of each TLD; 0 = all
	// OnSkip is called for each invalid line (reported as file:line: reason).
	OnSkip func(*domains.LineError)
}

// LoadStats counts what Load did.
type LoadStats struct {
	Valid      int // valid lines read
	Added      int // distinct domains in the run after selection
	Skipped    int // invalid lines
	Duplicates int // valid lines naming a domain already listed (the best rank kept)
	Filtered   int // valid lines outside --tld, or beyond --top
	SHA256     string
}

// loadBatch is how many entries go to the store per transaction.
const loadBatch = 5000

// Load streams a list into the run's domains. Memory stays bounded: entries go to the
// store in batches, and the store removes duplicates.
func Load(ctx context.Context, st store.Store, run int64, r io.Reader, name string, opt LoadOptions) (LoadStats, error) {
	var stats LoadStats
	// A resumed load finds the domains an interrupted one already stored: they count
	// as added, not as duplicates of themselves.
	counts, err := st.Counts(ctx, run)
	if err != nil {
		return stats, err
	}
	already := counts.Total
	h := sha256.New()
	lr := domains.NewReader(io.TeeReader(r, h), name)
	batch := make([]domains.Entry, 0, loadBatch)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		n, err := st.AddDomains(ctx, run, batch)
		stats.Added += n
		stats.Duplicates += len(batch) - n
		batch = batch[:0]
		return err
	}
	for {
		if err := ctx.Err(); err != nil {
			return stats, err
		}
		e, err := lr.Next()
		var le *domains.LineError
		switch {
		case errors.Is(err, io.EOF):
			if err := flush(); err != nil {
				return stats, err
			}
			stats.SHA256 = hex.EncodeToString(h.Sum(nil))
			stats.Added += already
			stats.Duplicates -= already
			if opt.Top > 0 {
				n, err := st.KeepTop(ctx, run, opt.Top)
				if err != nil {
					return stats, err
				}
				stats.Added -= n
				stats.Filtered += n
			}
			if stats.Added == 0 {
				return stats, ErrNoDomains
			}
			return stats, nil
		case errors.As(err, &le):
			stats.Skipped++
			if opt.OnSkip != nil {
				opt.OnSkip(le)
			}
			continue
		case err != nil:
			return stats, err
		}
		stats.Valid++
		if len(opt.TLDs) > 0 && !opt.TLDs[e.TLD] {
			stats.Filtered++
			continue
		}
		batch = append(batch, e)
		if len(batch) == loadBatch {
			if err := flush(); err != nil {
				return stats, err
			}
		}
	}
}

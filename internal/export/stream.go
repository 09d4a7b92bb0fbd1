package export

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"slices"

	"github.com/v6matrix/v6matrix/internal/store"
)

// ErrNoFile is returned by Stream for a file name the run does not export.
var ErrNoFile = fmt.Errorf("no such record file")

// FileNames returns the record files a run exports (FilesFor both formats), from its
// own vantage's measurements, as Stream does.
func FileNames(ctx context.Context, st store.Store, run int64) ([]string, error) {
	measured, err := st.MeasuredKinds(ctx, run, "")
	if err != nil {
		return nil, fmt.Errorf("export run %d: %w", run, err)
	}
	return FilesFor(Formats, measured), nil
}

// Stream writes one record file of a run (a CSV file of RECORDS.md or domains.jsonl)
// to w as it reads the run, so that memory stays flat whatever the run's size; the
// bytes are those Write puts in the file of that name.
func Stream(ctx context.Context, st store.Store, run int64, file string, w io.Writer) error {
	names, err := FileNames(ctx, st, run)
	if err != nil {
		return err
	}
	if !slices.Contains(names, file) {
		return fmt.Errorf("%s of run %d: %w", file, run, ErrNoFile)
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	if file == "domains.jsonl" {
		err = st.Details(ctx, run, "", func(d store.Detail) error {
			b, err := json.Marshal(DomainDocument(run, &d))
			if err != nil {
				return err
			}
			_, err = bw.Write(append(b, '\n'))
			return err
		})
	} else {
		var t table
		for _, x := range tables {
			if x.file == file {
				t = x
			}
		}
		cw := csv.NewWriter(bw)
		cw.Write(t.header)
		err = st.Details(ctx, run, "", func(d store.Detail) error {
			t.rows(&d, func(cells ...string) { cw.Write(cells) })
			return cw.Error()
		})
		cw.Flush()
		if err == nil {
			err = cw.Error()
		}
	}
	if err != nil {
		return fmt.Errorf("export %s of run %d: %w", file, run, err)
	}
	return bw.Flush()
}

// DomainDocument is a domain's JSON Lines document (RECORDS.md), for the API.
func DomainDocument(run int64, d *store.Detail) DomainDoc { return domainJSON(run, d) }

// DomainDoc is the JSON Lines shape of one domain.
type DomainDoc = domainDoc

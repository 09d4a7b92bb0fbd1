package store

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5"
)

// SaveList stores the run's list as read from r, in chunks, in one transaction with its
// SHA-256 (runs.list_sha256), and returns the hash and the size.
func (s *Postgres) SaveList(ctx context.Context, run int64, r io.Reader) (string, int64, error) {
	var sum string
	var size int64
	err := s.inTx(ctx, "store the list", func(tx pgx.Tx) error {
		var err error
		sum, size, err = writeChunks(ctx, r, func(seq int, data []byte) error {
			_, err := tx.Exec(ctx, `INSERT INTO list_chunks (run_id, seq, data) VALUES ($1, $2, $3)`, run, seq, data)
			return err
		})
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE runs SET list_sha256 = $1 WHERE id = $2`, sum, run); err != nil {
			return fmt.Errorf("store the list: %w", err)
		}
		return nil
	})
	if err != nil {
		return "", 0, err
	}
	return sum, size, nil
}

// OpenList returns the run's stored list; ErrNotFound if it has none.
func (s *Postgres) OpenList(ctx context.Context, run int64) (io.ReadCloser, error) {
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM list_chunks WHERE run_id = $1`, run).Scan(&n); err != nil {
		return nil, fmt.Errorf("read the list of run %d: %w", run, err)
	}
	if n == 0 {
		return nil, fmt.Errorf("the list of run %d: %w", run, ErrNotFound)
	}
	return &chunkReader{chunk: func(seq int) ([]byte, bool, error) {
		var b []byte
		err := s.pool.QueryRow(ctx, `SELECT data FROM list_chunks WHERE run_id = $1 AND seq = $2`, run, seq).Scan(&b)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, fmt.Errorf("read the list of run %d: %w", run, err)
		}
		return b, true, nil
	}}, nil
}

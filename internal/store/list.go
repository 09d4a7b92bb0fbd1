package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
)

// listChunk is how much of a list one row holds.
const listChunk = 1 << 20

// SaveList stores the run's list as read from r, in one transaction together with its
// SHA-256 (runs.list_sha256), and returns the hash and the size. The crawl loads the
// list from this copy, and so does every resume: the file may change or vanish.
func (s *SQLite) SaveList(ctx context.Context, run int64, r io.Reader) (string, int64, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return "", 0, fmt.Errorf("store the list: %w", err)
	}
	defer tx.Rollback()
	ins, err := tx.PrepareContext(ctx, `INSERT INTO list_chunks (run_id, seq, data) VALUES (?, ?, ?)`)
	if err != nil {
		return "", 0, fmt.Errorf("store the list: %w", err)
	}
	defer ins.Close()
	sum, size, err := writeChunks(ctx, r, func(seq int, data []byte) error {
		_, err := ins.ExecContext(ctx, run, seq, bytes.Clone(data))
		return err
	})
	if err != nil {
		return "", 0, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE runs SET list_sha256 = ? WHERE id = ?`, sum, run); err != nil {
		return "", 0, fmt.Errorf("store the list: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return "", 0, fmt.Errorf("store the list: %w", err)
	}
	return sum, size, nil
}

// writeChunks reads r to its end in chunks of listChunk bytes, calls insert for each,
// and returns the SHA-256 and the size. Chunk 0 is written even for an empty list: its
// presence says "stored".
func writeChunks(ctx context.Context, r io.Reader, insert func(seq int, data []byte) error) (string, int64, error) {
	h := sha256.New()
	buf := make([]byte, listChunk)
	var size int64
	for seq := 0; ; seq++ {
		n, rerr := io.ReadFull(r, buf)
		if n > 0 || seq == 0 {
			h.Write(buf[:n])
			size += int64(n)
			if err := insert(seq, buf[:n]); err != nil {
				if cerr := ctx.Err(); cerr != nil {
					// database/sql closes a transaction's statements when its context
					// ends, racing the insert: "statement is closed" means cancelled.
					err = cerr
				}
				return "", 0, fmt.Errorf("store the list: %w", err)
			}
		}
		if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
			break
		}
		if rerr != nil {
			return "", 0, fmt.Errorf("read the list: %w", rerr)
		}
		if err := ctx.Err(); err != nil {
			return "", 0, err
		}
	}
	return hex.EncodeToString(h.Sum(nil)), size, nil
}

// OpenList returns the run's stored list; ErrNotFound if it has none (a run stopped
// before its list was stored, or made by an older v6matrix).
func (s *SQLite) OpenList(ctx context.Context, run int64) (io.ReadCloser, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM list_chunks WHERE run_id = ?`, run).Scan(&n); err != nil {
		return nil, fmt.Errorf("read the list of run %d: %w", run, err)
	}
	if n == 0 {
		return nil, fmt.Errorf("the list of run %d: %w", run, ErrNotFound)
	}
	return &chunkReader{chunk: func(seq int) ([]byte, bool, error) {
		var b []byte
		err := s.db.QueryRowContext(ctx, `SELECT data FROM list_chunks WHERE run_id = ? AND seq = ?`, run, seq).Scan(&b)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, fmt.Errorf("read the list of run %d: %w", run, err)
		}
		return b, true, nil
	}}, nil
}

// chunkReader reads a stored list one chunk at a time, so memory stays bounded; chunk
// returns a chunk by number, false after the last.
type chunkReader struct {
	chunk func(seq int) ([]byte, bool, error)
	seq   int
	buf   []byte
	done  bool
}

func (r *chunkReader) Read(p []byte) (int, error) {
	for len(r.buf) == 0 {
		if r.done {
			return 0, io.EOF
		}
		b, ok, err := r.chunk(r.seq)
		if err != nil {
			return 0, err
		}
		r.buf, r.done = b, !ok
		r.seq++
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

func (r *chunkReader) Close() error { return nil }

package store

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sys/unix"
)

// ErrRunLocked is wrapped by LockRun's error while another crawl holds the run.
var ErrRunLocked = errors.New("another crawl holds the run")

// lockKey is the key of a run's crawl from a vantage: the run's id in the low 32 bits
// and a hash of the vantage in the high ones (for SQLite, a byte's offset in DB.lock:
// the file stays sparse; for PostgreSQL, an advisory lock's single 64-bit key, a space
// apart from the two 32-bit keys of distrib's job locks). Two vantages whose hashes
// collide exclude each other (about one pair in 65,000 among 300 vantages).
func lockKey(run int64, vantage string) int64 {
	h := fnv.New32a()
	h.Write([]byte(vantage))
	return int64(h.Sum32()&0x7fffffff)<<32 | int64(uint32(run))
}

// LockRun takes the crawl lock of run from vantage until unlock: an open file
// description lock (F_OFD_SETLK) on the byte of PATH.lock, beside the database, at
// offset lockKey. A second LockRun of them, from this process or another, fails with
// ErrRunLocked meanwhile; the kernel releases the lock when the process ends, however
// it ends.
func (s *SQLite) LockRun(ctx context.Context, run int64, vantage string) (unlock func(), err error) {
	path := s.path + ".lock"
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock run %d: %w", run, err)
	}
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: io.SeekStart, Start: lockKey(run, vantage), Len: 1}
	if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk); err != nil {
		f.Close()
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) {
			return nil, fmt.Errorf("locked in %s: %w", path, ErrRunLocked)
		}
		return nil, fmt.Errorf("lock run %d in %s: %w", run, path, err)
	}
	return func() { f.Close() }, nil
}

// LockRun takes the crawl lock of run from vantage until unlock: a session advisory
// lock (key lockKey) on a connection of its own (not the pool's), which the server
// releases when the session ends, however the process ends. A second LockRun of them,
// from this process or another, fails with ErrRunLocked meanwhile.
func (p *Postgres) LockRun(ctx context.Context, run int64, vantage string) (unlock func(), err error) {
	if p.own == nil {
		return nil, fmt.Errorf("lock run %d: a transaction's view of %s cannot", run, p.name)
	}
	conn, err := pgx.ConnectConfig(ctx, p.own.Config().ConnConfig.Copy())
	if err != nil {
		return nil, fmt.Errorf("lock run %d on %s: %w", run, p.name, err)
	}
	var ok bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, lockKey(run, vantage)).Scan(&ok); err != nil {
		conn.Close(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("lock run %d on %s: %w", run, p.name, err)
	}
	if !ok {
		conn.Close(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("locked on %s: %w", p.name, ErrRunLocked)
	}
	return func() { conn.Close(context.Background()) }, nil
}

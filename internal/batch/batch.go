// Package batch is the stages' writer: items arrive on a channel and are flushed to the
// store in batches, when a batch is full, when it has waited long enough, and when the
// channel closes.
package batch

import (
	"context"
	"time"
)

// Write collects items from in until it closes, calling flush with every size items
// and with what has arrived every interval (size and interval must be positive). After
// the first error flush is not called again: later items are read and dropped, so
// that senders never block, and that error is returned once in is closed. flush must
// not keep the slice, which is reused.
func Write[T any](ctx context.Context, in <-chan T, size int, every time.Duration, flush func(ctx context.Context, items []T) error) error {
	items := make([]T, 0, size)
	var firstErr error
	send := func() {
		if len(items) > 0 && firstErr == nil {
			firstErr = flush(ctx, items)
		}
		clear(items) // let the flushed items be collected
		items = items[:0]
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case it, ok := <-in:
			if !ok {
				send()
				return firstErr
			}
			items = append(items, it)
			if len(items) >= size {
				send()
			}
		case <-tick.C:
			send()
		}
	}
}

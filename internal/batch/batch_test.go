package batch

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestWriteSize(t *testing.T) {
	in := make(chan int)
	var got [][]int
	done := make(chan error, 1)
	go func() {
		done <- Write(t.Context(), in, 3, time.Hour, func(_ context.Context, items []int) error {
			got = append(got, slices.Clone(items))
			return nil
		})
	}()
	for i := range 7 {
		in <- i
	}
	close(in)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([][]int{{0, 1, 2}, {3, 4, 5}, {6}}, got); diff != "" {
		t.Errorf("batches (-want +got):\n%s", diff)
	}
}

// TestWriteInterval checks that an item waits at most about one interval.
func TestWriteInterval(t *testing.T) {
	in := make(chan int)
	flushed := make(chan []int, 1)
	done := make(chan error, 1)
	go func() {
		done <- Write(t.Context(), in, 100, 10*time.Millisecond, func(_ context.Context, items []int) error {
			flushed <- slices.Clone(items)
			return nil
		})
	}()
	in <- 1
	select {
	case b := <-flushed:
		if !slices.Equal(b, []int{1}) {
			t.Errorf("flushed %v, want [1]", b)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the item was not flushed by the ticker")
	}
	close(in)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestWriteFirstError checks that the first error is kept, flush is not called again,
// and the sender is never blocked.
func TestWriteFirstError(t *testing.T) {
	in := make(chan int)
	calls := 0
	first := errors.New("disk full")
	done := make(chan error, 1)
	type key struct{}
	ctx := context.WithValue(t.Context(), key{}, "mine")
	go func() {
		done <- Write(ctx, in, 2, time.Hour, func(c context.Context, items []int) error {
			if c.Value(key{}) != "mine" {
				t.Error("flush did not get Write's context")
			}
			calls++
			if calls == 1 {
				return first
			}
			return errors.New("later")
		})
	}()
	for i := range 10 {
		in <- i
	}
	close(in)
	if err := <-done; !errors.Is(err, first) {
		t.Errorf("Write = %v, want %v", err, first)
	}
	if calls != 1 {
		t.Errorf("flush called %d times, want 1", calls)
	}
}

//go:build !linux

package path

import (
	"context"
	"errors"
	"net/netip"
)

func (t *Tracer) trace(context.Context, netip.Addr) (Result, error) {
	return Result{}, errors.New("path: tracing needs Linux (socket error queue)")
}

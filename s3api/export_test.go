package s3api

import (
	"context"
	"time"
)

// IdleTimeout is how long s keeps an idle connection open.
func IdleTimeout(s *Server) time.Duration { return s.srv.IdleTimeout }

// SetIdleTimeout changes it; call before Run.
func SetIdleTimeout(s *Server, d time.Duration) { s.srv.IdleTimeout = d }

// SetBodyIdleTimeout changes how long a body may stop arriving; call
// before Run.
func SetBodyIdleTimeout(s *Server, d time.Duration) { s.bodyIdle = d }

// FlushCharges charges the bytes served so far now, instead of at the
// next MeterInterval.
func FlushCharges(ctx context.Context, s *Server) error { return s.meter.Flush(ctx) }

// SetBeforeRootPlaced has s call hook before it places a queued bucket
// root (the change that made it already answered); call before Run.
func SetBeforeRootPlaced(s *Server, hook func(ctx context.Context, bucket, root string)) {
	s.beforeRootPlaced = hook
}

package s3api

import "time"

// IdleTimeout is how long s keeps an idle connection open.
func IdleTimeout(s *Server) time.Duration { return s.srv.IdleTimeout }

// SetIdleTimeout changes it; call before Run.
func SetIdleTimeout(s *Server, d time.Duration) { s.srv.IdleTimeout = d }

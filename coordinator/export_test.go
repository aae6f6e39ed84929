package coordinator

import "context"

// PassAudits makes every storage audit of a coordinator made with cfg
// pass without fetching anything: for tests whose nodes hold nothing.
func PassAudits(cfg *Config) {
	cfg.audit = func(context.Context, string, string) error { return nil }
}

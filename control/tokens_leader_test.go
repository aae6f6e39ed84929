package control

import (
	"context"
	"errors"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/verity-cdn/verity/gateway"
)

// laggingKV is a replica of the tokens bucket that has not stored any
// write yet: every Get misses, as a direct get answered by a lagging
// replica of a replicated bus does.
type laggingKV struct{ jetstream.KeyValue }

func (laggingKV) Get(context.Context, string) (jetstream.KeyValueEntry, error) {
	return nil, jetstream.ErrKeyNotFound
}

// A site created and deployed at once (through any gateway of a cluster)
// has its token checked by a Get that any replica may answer. One that
// has not stored the new token must not make the gateway refuse it: the
// check asks the stream's leader before refusing. A wrong token, and a
// site that does not exist, are still refused.
func TestSiteTokenCheckedAtTheLeaderBeforeRefusing(t *testing.T) {
	bus := openBus(t, "tokens-leader")
	s, stop := startStack(t, bus, Config{}, gateway.Config{})
	defer stop()
	ctx := t.Context()
	tok, err := s.ctl.CreateSite(ctx, "blog")
	if err != nil {
		t.Fatal(err)
	}
	s.ctl.tokens = laggingKV{s.ctl.tokens}
	if err := s.ctl.checkSiteToken(ctx, "blog", tok); err != nil {
		t.Errorf("the site's token, with the replica that answered not having it yet: %v, want it accepted", err)
	}
	var re *RequestError
	if err := s.ctl.checkSiteToken(ctx, "blog", tok+"x"); !errors.As(err, &re) || !errors.Is(err, ErrForbidden) {
		t.Errorf("a wrong token: %v, want forbidden", err)
	}
	if err := s.ctl.checkSiteToken(ctx, "no-such-site", tok); !errors.As(err, &re) || !errors.Is(err, ErrForbidden) {
		t.Errorf("a site that does not exist: %v, want forbidden", err)
	}
}

package wasmclient_test

import (
	"errors"
	"testing"

	"github.com/verity-cdn/verity/internal/errfmt"
	"github.com/verity-cdn/verity/internal/wire"
	"github.com/verity-cdn/verity/wasmclient"
)

func TestHTTPStatus(t *testing.T) {
	cases := []struct {
		err  error
		want int
	}{
		{nil, 200},
		{errfmt.Errorf("%w: /x", wasmclient.ErrNotFound), 404},
		{errfmt.Errorf("%w: /..", wasmclient.ErrBadPath), 400},
		{wasmclient.ErrUnsupported, 501},
		{errfmt.Errorf("%w: %w", wasmclient.ErrSession, errors.New("offline")), 503},
		{errfmt.Errorf("%w: %w", wasmclient.ErrSession, &wire.StatusError{Status: 500}), 503},
		// The gateway no longer knows the site.
		{errfmt.Errorf("%w: %w", wasmclient.ErrSession, &wire.StatusError{Status: 404}), 404},
		{&wasmclient.FetchError{}, 502},
		{&wasmclient.FetchError{NotFound: true}, 404},
	}
	for _, tc := range cases {
		if got := wasmclient.HTTPStatus(tc.err); got != tc.want {
			t.Errorf("HTTPStatus(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}

package wasmclient

import (
	"bytes"
	"context"
	"time"
)

// NewScoresForTest returns an empty Scores on clock now with the default
// hedge bounds.
func NewScoresForTest(now func() time.Time) *Scores {
	return newScores(Config{Now: now}.normalize())
}

// TransportsForTest returns the client's transports.
func (c *Client) TransportsForTest() []Transport { return c.cfg.Transports }

// Warm-up fixture access for TestWarmupFixture.
var (
	WarmupStreamForTest = &warmupStream
	WarmupRootForTest   = warmupRoot
	WarmupSizeForTest   = warmupSize
	WarmupPathForTest   = warmupPath
)

// NewWarmupClientForTest is newWarmupClient over a dialer answering
// stream on every dial.
func NewWarmupClientForTest(stream []byte) (*Client, error) {
	return newWarmupClient(streamDialer(stream))
}

type streamDialer []byte

func (d streamDialer) DialStream(context.Context, Node) (Stream, error) {
	return bytesStream{bytes.NewReader(d)}, nil
}

package wasmclient

import "time"

// NewScoresForTest returns an empty Scores on clock now with the default
// hedge bounds.
func NewScoresForTest(now func() time.Time) *Scores {
	return newScores(Config{Now: now}.normalize())
}

// TransportsForTest returns the client's transports.
func (c *Client) TransportsForTest() []Transport { return c.cfg.Transports }

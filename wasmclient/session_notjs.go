//go:build !js

package wasmclient

import "encoding/json"

// RawJSON is a JSON value kept as its text.
type RawJSON = json.RawMessage

func decodeSession(data []byte) (*Session, error) {
	var s Session
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

package siteclient

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/verity-cdn/verity/internal/api"
)

// maxEventLine bounds one line of the event stream.
const maxEventLine = 1 << 20

// Events reads the gateway's event feed (GET /v1/events, admin token):
// the last `last` stored events of the given types (e.g. "site.published";
// all types when none),
// then, when follow is set, new events as they are stored, until ctx ends
// (Events then returns nil) or fn returns an error. Without follow it
// returns once the stored events are read.
func (c *Client) Events(ctx context.Context, types []string, last uint64, follow bool, fn func(api.Event) error) error {
	q := url.Values{}
	if len(types) > 0 {
		q.Set("types", strings.Join(types, ","))
	}
	q.Set("last", strconv.FormatUint(last, 10))
	if !follow {
		q.Set("follow", "0")
	}
	req, err := c.newRequest(ctx, http.MethodGet, "/v1/events?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.cfg.HTTP.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return apiError(resp.StatusCode, b)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), maxEventLine)
	var data strings.Builder
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if data.Len() == 0 {
				continue
			}
			ev, err := parseEvent([]byte(data.String()))
			data.Reset()
			if err != nil {
				return err
			}
			if err := fn(ev); err != nil {
				return err
			}
		case strings.HasPrefix(line, "data: "):
			data.WriteString(strings.TrimPrefix(line, "data: "))
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("siteclient: event feed: %w", err)
	}
	if !follow {
		return nil
	}
	return fmt.Errorf("siteclient: event feed closed by the gateway")
}

// parseEvent decodes one record's data, an api.Event with an id, a type
// and a JSON payload.
func parseEvent(b []byte) (api.Event, error) {
	var ev api.Event
	if err := json.Unmarshal(b, &ev); err != nil {
		return ev, fmt.Errorf("siteclient: event feed: %w", err)
	}
	if ev.ID == "" || ev.Type == "" || (len(ev.Data) > 0 && !json.Valid(ev.Data)) {
		return ev, fmt.Errorf("siteclient: event feed: malformed event %.80q", b)
	}
	return ev, nil
}

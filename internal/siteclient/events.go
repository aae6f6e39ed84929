package siteclient

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/verity-cdn/verity/internal/events"
)

// maxEventLine bounds one line of the event stream.
const maxEventLine = 1 << 20

// Events reads the gateway's event feed (GET /v1/events, admin token):
// the last `last` stored events of the given types (all types when none),
// then, when follow is set, new events as they are stored, until ctx ends
// (Events then returns nil) or fn returns an error. Without follow it
// returns once the stored events are read.
func (c *Client) Events(ctx context.Context, types []events.Type, last uint64, follow bool, fn func(events.Event) error) error {
	q := url.Values{}
	if len(types) > 0 {
		s := make([]string, len(types))
		for i, t := range types {
			s[i] = string(t)
		}
		q.Set("types", strings.Join(s, ","))
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
			ev, err := events.ParseEvent([]byte(data.String()))
			data.Reset()
			if err != nil {
				return fmt.Errorf("siteclient: event feed: %w", err)
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

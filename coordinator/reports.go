package coordinator

import (
	"time"

	"github.com/verity-cdn/verity/internal/events"
	"github.com/verity-cdn/verity/internal/nodeproto"
)

// maxReasons bounds the reasons forwarded in one message.
const maxReasons = 8

// forwardReports follows node.reported events and passes each to the node
// it is about when that node is connected to this coordinator. It runs
// until Close; a broken feed is re-opened after a pause.
func (c *Coordinator) forwardReports() {
	defer c.wg.Done()
	for c.ctx.Err() == nil {
		err := c.cfg.Bus.Follow(c.ctx, events.FollowOptions{Types: []events.Type{events.TypeNodeReported}}, func(ev events.Event) error {
			var r events.NodeReported
			if err := ev.Decode(&r); err != nil || len(r.Reasons) == 0 {
				return nil
			}
			c.mu.Lock()
			nc := c.conns[r.Node]
			c.mu.Unlock()
			if nc == nil {
				return nil
			}
			reasons := make(map[string]int, len(r.Reasons))
			for k, v := range r.Reasons {
				if len(reasons) == maxReasons || v <= 0 {
					continue
				}
				reasons[k] = v
			}
			if err := nc.write(nodeproto.Message{Type: nodeproto.MsgReported, Reported: &nodeproto.Reported{Reasons: reasons}}); err != nil {
				c.log.Debug("report not forwarded", "node", r.Node, "err", err)
			}
			return nil
		})
		if c.ctx.Err() != nil {
			return
		}
		if err != nil {
			c.log.Warn("report feed ended; reopening", "err", err)
		}
		select {
		case <-c.ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

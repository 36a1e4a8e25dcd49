package channels

import (
	"context"
	"encoding/json"

	"github.com/switchboard/switchboard/broker"
	"github.com/switchboard/switchboard/protocol"
)

// historian answers GetHistory for any topic with a stream.
type historian struct {
	broker Broker
	limits Limits
}

// page reads one History page of topic. The room field is copied from req.
func (h historian) page(ctx context.Context, topic string, req protocol.GetHistory) (protocol.History, error) {
	if !h.limits.HistoryEnabled {
		return protocol.History{}, protocol.Errorf(protocol.CodeHistoryDisabled, "this server keeps no history (HISTORY_SIZE=0)")
	}
	limit := req.Limit
	switch {
	case limit < 0:
		return protocol.History{}, protocol.Errorf(protocol.CodeInvalidContents, "limit must be positive")
	case limit == 0:
		limit = h.limits.HistoryPage
	case limit > h.limits.HistoryMaxPage:
		limit = h.limits.HistoryMaxPage
	}
	page, err := h.broker.History(ctx, topic, broker.HistoryQuery{
		Since: req.Since, Before: req.Before, Limit: limit, MaxBytes: h.limits.HistoryPageBytes,
	})
	if err != nil {
		return protocol.History{}, brokerError(err)
	}
	out := protocol.History{Room: req.Room, Messages: make([]json.RawMessage, 0, len(page.Messages)), Complete: page.Complete}
	for _, m := range page.Messages {
		pub, err := protocol.ParsePublication(m.Data, m.ID)
		if err != nil {
			return protocol.History{}, err
		}
		out.Messages = append(out.Messages, pub.ContentsWithID())
	}
	return out, nil
}

package node

import (
	"context"
	"time"

	"github.com/switchboard/switchboard/broker"
	"github.com/switchboard/switchboard/metrics"
)

// instrumented times every broker operation the node waits for.
type instrumented struct {
	Broker
	m *metrics.Metrics
}

func instrument(b Broker, m *metrics.Metrics) Broker { return instrumented{Broker: b, m: m} }

func (i instrumented) observe(op string, start time.Time, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	i.m.BrokerSeconds.WithLabelValues(op, result).Observe(time.Since(start).Seconds())
}

func (i instrumented) Publish(ctx context.Context, msg broker.Message, withHistory bool) (broker.PublishResult, error) {
	start := time.Now()
	res, err := i.Broker.Publish(ctx, msg, withHistory)
	op := "publish"
	if withHistory {
		op = "publish_history"
	}
	i.observe(op, start, err)
	return res, err
}

func (i instrumented) History(ctx context.Context, topic string, q broker.HistoryQuery) (broker.HistoryPage, error) {
	start := time.Now()
	page, err := i.Broker.History(ctx, topic, q)
	i.observe("history", start, err)
	return page, err
}

func (i instrumented) Subscribe(ctx context.Context, topic string) error {
	start := time.Now()
	err := i.Broker.Subscribe(ctx, topic)
	i.observe("subscribe", start, err)
	return err
}

func (i instrumented) AddPresence(ctx context.Context, topic, user, conn string, joined []byte) (bool, error) {
	start := time.Now()
	first, err := i.Broker.AddPresence(ctx, topic, user, conn, joined)
	i.observe("presence_add", start, err)
	return first, err
}

func (i instrumented) Members(ctx context.Context, topic string, q broker.MembersQuery) (broker.MembersPage, error) {
	start := time.Now()
	page, err := i.Broker.Members(ctx, topic, q)
	i.observe("members", start, err)
	return page, err
}

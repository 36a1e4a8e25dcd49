package node

import (
	"context"
	"time"

	"golang.org/x/time/rate"

	"github.com/switchboard/switchboard/broker"
	"github.com/switchboard/switchboard/protocol"
)

// publishLimited bounds the bytes a node publishes per second, all its
// clients together (NODE_PUBLISH_BYTES): whatever each connection's own
// budget allows, a node never pushes Redis (and every subscribed node)
// more than this, so a crowd of writers cannot overflow the pub/sub output
// buffers Redis keeps for the nodes. A publish over the limit is refused
// with rate_limited and never half-done.
type publishLimited struct {
	Broker
	limit *rate.Limiter
}

func limitPublishing(b Broker, bytesPerSecond int) Broker {
	if bytesPerSecond <= 0 {
		return b
	}
	return publishLimited{Broker: b, limit: rate.NewLimiter(rate.Limit(bytesPerSecond), 2*bytesPerSecond)}
}

// Publish publishes msg if the node's byte budget has room for it.
func (p publishLimited) Publish(ctx context.Context, msg broker.Message, withHistory bool) (broker.PublishResult, error) {
	if !p.limit.AllowN(time.Now(), len(msg.Data)) {
		return broker.PublishResult{}, protocol.Errorf(protocol.CodeRateLimited,
			"this server is publishing at its limit (NODE_PUBLISH_BYTES); the message was dropped, try again shortly")
	}
	return p.Broker.Publish(ctx, msg, withHistory)
}

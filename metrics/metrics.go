// Package metrics defines the Prometheus metrics a Switchboard node exports
// at /metrics.
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds one node's collectors, in a registry of its own so that
// several nodes in one process (tests) do not collide.
type Metrics struct {
	registry *prometheus.Registry

	// Connections is the number of open WebSockets.
	Connections prometheus.Gauge
	// Opened counts accepted WebSocket handshakes.
	Opened prometheus.Counter
	// Closed counts ended connections by why they ended: peer, slow,
	// rate_limit, ping_timeout, shutdown, auth, too_big, write_error,
	// unavailable, busy, kicked, refused.
	Closed *prometheus.CounterVec
	// FramesIn counts frames read from clients, by channel ("unknown" for
	// frames whose channel could not be read or does not exist).
	FramesIn *prometheus.CounterVec
	// FramesOut counts frames written to clients.
	FramesOut prometheus.Counter
	// FramesAtOnce counts the frames of FramesOut sent by whoever produced
	// them, without waiting in the connection's queue for its writer.
	FramesAtOnce prometheus.Counter
	// Pings counts keep-alive pings sent to silent connections.
	Pings prometheus.Counter
	// Errors counts Error replies by code.
	Errors *prometheus.CounterVec
	// BrokerSeconds times broker operations by op and result (ok, error).
	BrokerSeconds *prometheus.HistogramVec
}

// New returns a node's metrics; subscriptions reports how many broker
// subscriptions the node holds when scraped.
func New(subscriptions func() int) *Metrics {
	r := prometheus.NewRegistry()
	f := func(c prometheus.Collector) { r.MustRegister(c) }
	m := &Metrics{
		registry: r,
		Connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "switchboard_connections", Help: "Open WebSocket connections.",
		}),
		Opened: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchboard_connections_opened_total", Help: "WebSocket handshakes accepted.",
		}),
		Closed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_connections_closed_total", Help: "Connections ended, by reason.",
		}, []string{"reason"}),
		FramesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_frames_received_total", Help: "Frames read from clients, by channel.",
		}, []string{"channel"}),
		FramesOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchboard_frames_sent_total", Help: "Frames written to clients.",
		}),
		FramesAtOnce: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchboard_frames_sent_at_once_total", Help: "Frames written to clients at once by whoever produced them, without the connection's queue and writer (a part of frames_sent).",
		}),
		Pings: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchboard_keepalive_pings_total", Help: "Keep-alive pings sent to silent connections.",
		}),
		Errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_client_errors_total", Help: "Error replies sent to clients, by code.",
		}, []string{"code"}),
		BrokerSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "switchboard_broker_operation_seconds",
			Help:    "Broker (Redis) operation latency, by operation and result.",
			Buckets: []float64{.0002, .0005, .001, .002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"op", "result"}),
	}
	f(m.Connections)
	f(m.Opened)
	f(m.Closed)
	f(m.FramesIn)
	f(m.FramesOut)
	f(m.FramesAtOnce)
	f(m.Pings)
	f(m.Errors)
	f(m.BrokerSeconds)
	f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "switchboard_subscriptions", Help: "Broker subscriptions this node holds (one per topic with a local member).",
	}, func() float64 { return float64(subscriptions()) }))
	f(collectors.NewGoCollector())
	f(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// Registerer is the node's registry, for collectors defined elsewhere
// (the webhook client's): they are served by Handler with the rest.
func (m *Metrics) Registerer() prometheus.Registerer { return m.registry }

package webhook

import "github.com/prometheus/client_golang/prometheus"

// clientMetrics are the collectors of one Client.
type clientMetrics struct {
	latency     *prometheus.HistogramVec // by event, outcome
	failures    *prometheus.CounterVec   // by event, reason
	retries     *prometheus.CounterVec   // by event
	undelivered prometheus.Counter
	failOpen    prometheus.Counter
}

func newClientMetrics(reg prometheus.Registerer) (*clientMetrics, error) {
	m := &clientMetrics{
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "switchboard_webhook_seconds",
			Help:    "Webhook request latency, by event (connect, message, disconnect) and outcome (ok or a failure reason).",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"event", "outcome"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_webhook_failures_total",
			Help: "Failed webhook requests, by event and reason (timeout, transport, status, refused, bad_reply, closed, canceled).",
		}, []string{"event", "reason"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_webhook_retries_total",
			Help: "Webhook requests retried after a failure, by event.",
		}, []string{"event"}),
		undelivered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchboard_webhook_disconnect_undelivered_total",
			Help: "DELETE webhooks given up on (retry bound, permanent error or shutdown).",
		}),
		failOpen: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchboard_webhook_fail_open_total",
			Help: "Connections accepted because the backend could not be reached (fail-open).",
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.latency, m.failures, m.retries, m.undelivered, m.failOpen} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

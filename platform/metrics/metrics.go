// Package metrics defines the Prometheus series every punchflow service
// exports, so dashboards and alerts read the same names from all four.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Pipeline holds the series of one service. Label values are low-cardinality
// (a stage, a reason code, an error class), never an id or a device serial.
type Pipeline struct {
	Received     *prometheus.CounterVec // by kind of message or input
	Published    *prometheus.CounterVec // by kind
	Acked        prometheus.Counter
	Naked        prometheus.Counter     // NakWithDelay, a transient failure
	DeadLettered *prometheus.CounterVec // by reason code
	Errors       *prometheus.CounterVec // by class
	NATSErrors   *prometheus.CounterVec // asynchronous NATS errors by kind
	Handler      prometheus.Histogram   // seconds to handle one message
	Batch        prometheus.Histogram   // seconds to flush one batch
	BatchRows    prometheus.Histogram   // rows per flushed batch
}

// NewPipeline registers the series for service on reg, together with the Go
// runtime and process collectors.
func NewPipeline(reg prometheus.Registerer, service string) *Pipeline {
	f := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "punchflow", Subsystem: service, Name: name, Help: help}, labels)
	}
	p := &Pipeline{
		Received:     f("received_total", "Messages or input records received.", "kind"),
		Published:    f("published_total", "Messages published and acknowledged by JetStream.", "kind"),
		Acked:        prometheus.NewCounter(prometheus.CounterOpts{Namespace: "punchflow", Subsystem: service, Name: "acked_total", Help: "JetStream messages acknowledged after their effect was durable."}),
		Naked:        prometheus.NewCounter(prometheus.CounterOpts{Namespace: "punchflow", Subsystem: service, Name: "nak_delayed_total", Help: "Messages returned for redelivery after a transient failure."}),
		DeadLettered: f("dead_lettered_total", "Records sent to the dead-letter stream.", "reason"),
		Errors:       f("errors_total", "Errors by class.", "class"),
		NATSErrors:   f("nats_async_errors_total", "Asynchronous NATS errors (permission violations, slow consumers).", "kind"),
		Handler: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "punchflow", Subsystem: service, Name: "handler_seconds",
			Help: "Time to handle one message.", Buckets: prometheus.ExponentialBuckets(0.00005, 4, 10)}),
		Batch: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "punchflow", Subsystem: service, Name: "batch_seconds",
			Help: "Time to flush one batch.", Buckets: prometheus.ExponentialBuckets(0.001, 3, 10)}),
		BatchRows: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "punchflow", Subsystem: service, Name: "batch_rows",
			Help: "Rows per flushed batch.", Buckets: prometheus.ExponentialBuckets(1, 4, 8)}),
	}
	reg.MustRegister(p.Received, p.Published, p.Acked, p.Naked, p.DeadLettered, p.Errors, p.NATSErrors, p.Handler, p.Batch, p.BatchRows,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return p
}

// Inc counts an asynchronous NATS error; it makes Pipeline a
// natsconn.AsyncErrorCounter.
func (p *Pipeline) Inc(kind string) { p.NATSErrors.WithLabelValues(kind).Inc() }

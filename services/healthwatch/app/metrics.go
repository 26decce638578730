package app

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/punchflow/punchflow/services/healthwatch/internal/health"
)

// watchMetrics are healthwatch's own series, next to the pipeline ones.
// Channel names come from the policy file, so their cardinality is bounded.
type watchMetrics struct {
	devices     *prometheus.GaugeVec   // devices per state
	transitions *prometheus.CounterVec // conditions raised and cleared
	suppressed  *prometheus.CounterVec // transitions recorded but not alerted, by reason
	sent        *prometheus.CounterVec // notifications a channel accepted, by channel and type
	failed      *prometheus.CounterVec // deliveries that failed after their retries, by channel and reason
	retries     *prometheus.CounterVec // failed attempts that were retried, by channel
	scheduled   *prometheus.CounterVec // reports and escalations queued, by type
}

func newWatchMetrics(reg prometheus.Registerer) *watchMetrics {
	c := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "punchflow", Subsystem: "healthwatch", Name: name, Help: help}, labels)
	}
	m := &watchMetrics{
		devices: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "punchflow", Subsystem: "healthwatch", Name: "devices",
			Help: "Devices per state."}, []string{"state"}),
		transitions: c("transitions_total", "Device conditions raised or cleared.", "condition", "direction"),
		suppressed:  c("alerts_suppressed_total", "Transitions recorded in the state but not alerted.", "reason"),
		sent:        c("notifications_sent_total", "Notifications a channel accepted.", "channel", "type"),
		failed:      c("notifications_failed_total", "Notification deliveries that failed after their retries (rejected: dropped; gave_up and misconfigured: retried later).", "channel", "reason"),
		retries:     c("notification_retries_total", "Failed delivery attempts that were retried.", "channel"),
		scheduled:   c("scheduled_total", "Reports and escalations queued.", "type"),
	}
	reg.MustRegister(m.devices, m.transitions, m.suppressed, m.sent, m.failed, m.retries, m.scheduled)
	for _, s := range health.States() {
		m.devices.WithLabelValues(string(s))
	}
	return m
}

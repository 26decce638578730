package app

import (
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/punchflow/punchflow/platform/service"
)

// Config is healthwatch's configuration.
type Config struct {
	service.Common
	Durable    string
	AckWait    time.Duration
	MaxDeliver int
	// PolicyFile is the YAML alerting policy (devices, sites, thresholds,
	// teams, channels, schedule); empty means the built-in default.
	PolicyFile string
	// EvaluateEvery is how often time-based states (disconnected, never
	// seen), report slots and Alertmanager re-sends are checked.
	EvaluateEvery time.Duration
	// NotifyAckWait is how long a notification may be held by one replica
	// without a sign of progress before another replica takes it.
	NotifyAckWait time.Duration
	PageRefresh   time.Duration
	Alerts        AlertTopology
}

// AlertTopology names healthwatch's own stream and bucket.
type AlertTopology struct {
	// Stream holds the notifications to send (alerts.>), one durable
	// consumer per channel.
	Stream string
	MaxAge time.Duration
	// Duplicates is the de-duplication window for notification ids.
	Duplicates time.Duration
	// Bucket holds delivery markers and schedule claims; entries expire
	// after TTL.
	Bucket string
	TTL    time.Duration
}

func (c *Config) register(fs *flag.FlagSet) {
	c.Common.RegisterFlags(fs, ":8084")
	fs.StringVar(&c.Durable, "durable", "healthwatch", "durable consumer name shared by all replicas")
	fs.DurationVar(&c.AckWait, "ack-wait", 30*time.Second, "how long a delivered heartbeat may stay unacknowledged")
	fs.IntVar(&c.MaxDeliver, "max-deliver", 8, "delivery budget before a failing heartbeat is dead-lettered")
	fs.StringVar(&c.PolicyFile, "policy", "", "YAML alerting policy: devices, sites and thresholds, teams, channels, report times, payroll cut-offs (see the README)")
	fs.DurationVar(&c.EvaluateEvery, "evaluate-every", 10*time.Second, "how often time-based states, report slots and Alertmanager re-sends are checked")
	fs.DurationVar(&c.NotifyAckWait, "notify-ack-wait", time.Minute, "how long one replica may hold a notification without progress before another takes it")
	fs.DurationVar(&c.PageRefresh, "page-refresh", 30*time.Second, "status page automatic refresh (0 disables)")
	fs.StringVar(&c.Alerts.Stream, "stream-alerts", "ALERTS", "stream of pending notifications (alerts.>)")
	fs.DurationVar(&c.Alerts.MaxAge, "stream-alerts-max-age", 7*24*time.Hour, "how long an undelivered notification is kept and retried")
	fs.DurationVar(&c.Alerts.Duplicates, "stream-alerts-duplicate-window", 2*time.Hour, "de-duplication window for notification ids")
	fs.StringVar(&c.Alerts.Bucket, "kv-alerts", "healthwatch_alerts", "KV bucket of delivery markers and schedule claims")
	fs.DurationVar(&c.Alerts.TTL, "kv-alerts-ttl", 8*24*time.Hour, "how long delivery markers and claims are kept (longer than stream-alerts-max-age)")
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	if c.Durable == "" {
		errs = append(errs, errors.New("durable must not be empty"))
	}
	if c.MaxDeliver < 2 {
		errs = append(errs, errors.New("max-deliver must be at least 2"))
	}
	if c.EvaluateEvery < 10*time.Millisecond {
		errs = append(errs, errors.New("evaluate-every must be at least 10ms"))
	}
	if c.NotifyAckWait < time.Second {
		errs = append(errs, errors.New("notify-ack-wait must be at least 1s"))
	}
	if c.PageRefresh < 0 {
		errs = append(errs, errors.New("page-refresh must not be negative"))
	}
	if c.Alerts.Stream == "" || c.Alerts.Bucket == "" {
		errs = append(errs, errors.New("stream-alerts and kv-alerts must not be empty"))
	}
	if c.Alerts.MaxAge <= 0 || c.Alerts.Duplicates <= 0 || c.Alerts.Duplicates > c.Alerts.MaxAge {
		errs = append(errs, fmt.Errorf("stream-alerts-duplicate-window %v must be positive and within stream-alerts-max-age %v", c.Alerts.Duplicates, c.Alerts.MaxAge))
	}
	if c.Alerts.TTL <= c.Alerts.MaxAge {
		errs = append(errs, fmt.Errorf("kv-alerts-ttl %v must exceed stream-alerts-max-age %v, or a notification could outlive its delivery marker and be sent twice", c.Alerts.TTL, c.Alerts.MaxAge))
	}
	errs = append(errs, c.Common.Validate())
	return errors.Join(errs...)
}

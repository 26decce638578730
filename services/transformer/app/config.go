package app

import (
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/punchflow/punchflow/platform/service"
	"github.com/punchflow/punchflow/proto"
)

// Config is the transformer's configuration.
type Config struct {
	service.Common
	RulesFile     string
	Durable       string
	AckWait       time.Duration
	MaxDeliver    int
	MaxAckPending int
	// InFlight bounds publishes awaiting JetStream's acknowledgement.
	InFlight int
	Roster   RosterConfig
}

// RosterConfig says where the roster comes from: a file (re-read when it
// changes), the KV bucket named by --kv-roster (watched), or nowhere (no
// roster: users are not looked up and never flagged unknown).
type RosterConfig struct {
	File string
	KV   bool
	// Poll is how often the file is checked for changes.
	Poll time.Duration
}

func (c *Config) register(fs *flag.FlagSet, defaultHTTP string) {
	c.Common.RegisterFlags(fs, defaultHTTP)
	fs.StringVar(&c.RulesFile, "rules", "", "payroll rules YAML file (required)")
	fs.StringVar(&c.Durable, "durable", "transformer", "durable consumer name shared by all replicas")
	fs.DurationVar(&c.AckWait, "ack-wait", 30*time.Second, "how long a delivered message may stay unacknowledged")
	fs.IntVar(&c.MaxDeliver, "max-deliver", 8, "delivery budget before a failing message is dead-lettered")
	fs.IntVar(&c.MaxAckPending, "max-ack-pending", 4096, "unacknowledged messages allowed per consumer across replicas")
	fs.IntVar(&c.InFlight, "in-flight", 1024, "publishes awaiting acknowledgement per replica")
	fs.StringVar(&c.Roster.File, "roster", "", "roster file (CSV with site,user_id,person_id[,name,department,shift], or YAML/JSON); re-read when it changes")
	fs.BoolVar(&c.Roster.KV, "roster-kv", false, "read the roster from the KV bucket named by --kv-roster and apply changes as they happen")
	fs.DurationVar(&c.Roster.Poll, "roster-poll", 10*time.Second, "how often the roster file is checked for changes")
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	if c.RulesFile == "" {
		errs = append(errs, errors.New("rules is required: give --rules FILE or PUNCHFLOW_RULES"))
	}
	if c.Durable == "" {
		errs = append(errs, errors.New("durable must not be empty"))
	}
	if c.MaxDeliver < 2 {
		errs = append(errs, errors.New("max-deliver must be at least 2 so a transient failure is retried"))
	}
	if c.InFlight < 1 || c.MaxAckPending < c.InFlight {
		errs = append(errs, errors.New("in-flight must be at least 1 and at most max-ack-pending"))
	}
	if c.AckWait < time.Second {
		errs = append(errs, errors.New("ack-wait must be at least 1s"))
	}
	if c.Roster.File != "" && c.Roster.KV {
		errs = append(errs, errors.New("give either --roster FILE or --roster-kv, not both"))
	}
	if c.Roster.Poll < 100*time.Millisecond {
		errs = append(errs, errors.New("roster-poll must be at least 100ms"))
	}
	errs = append(errs, c.Common.Validate())
	return errors.Join(errs...)
}

// ReplayConfig is the configuration of `transformer replay`.
type ReplayConfig struct {
	Config
	// Since is where the replay starts, in RAW's message time.
	Since    time.Time
	Subjects []string
	// Progress is how often progress is printed.
	Progress time.Duration
	since    string
	subjects string
}

func (c *ReplayConfig) register(fs *flag.FlagSet) {
	c.Config.register(fs, "127.0.0.1:0")
	fs.StringVar(&c.since, "since", "", "replay RAW from this time: RFC 3339 (2026-11-02T08:00:00Z), a date (2026-11-02, midnight UTC) or a duration ago (48h) (required)")
	fs.StringVar(&c.subjects, "subjects", proto.PrefixRaw+".punch.>,"+proto.PrefixRaw+".record.>", "comma-separated RAW subjects to replay, for example raw.punch.hq.>")
	fs.DurationVar(&c.Progress, "progress", time.Second, "how often to print progress")
}

// validate parses --since and --subjects against now.
func (c *ReplayConfig) validate(now time.Time) error {
	var errs []error
	switch {
	case c.since == "":
		errs = append(errs, errors.New("since is required: give --since 2026-11-02T08:00:00Z, --since 2026-11-02 or --since 48h"))
	default:
		if t, err := time.Parse(time.RFC3339, c.since); err == nil {
			c.Since = t
		} else if t, err := time.Parse(time.DateOnly, c.since); err == nil {
			c.Since = t
		} else if d, err := time.ParseDuration(c.since); err == nil && d > 0 {
			c.Since = now.Add(-d)
		} else {
			errs = append(errs, fmt.Errorf("since %q is not an RFC 3339 time, a YYYY-MM-DD date or a positive duration", c.since))
		}
	}
	c.Subjects = nil
	for _, s := range strings.Split(c.subjects, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if !strings.HasPrefix(s, proto.PrefixRaw+".punch.") && !strings.HasPrefix(s, proto.PrefixRaw+".record.") && s != proto.PrefixRaw+".>" {
			errs = append(errs, fmt.Errorf("subject %q is not a RAW punch or record subject (raw.punch.<site>.<device>, raw.record.<source>, wildcards allowed)", s))
		}
		c.Subjects = append(c.Subjects, s)
	}
	if len(c.Subjects) == 0 {
		errs = append(errs, errors.New("subjects must name at least one subject"))
	}
	if c.Progress <= 0 {
		errs = append(errs, errors.New("progress must be positive"))
	}
	errs = append(errs, c.Config.Validate())
	return errors.Join(errs...)
}

package app

import (
	"errors"
	"flag"
	"time"

	"github.com/punchflow/punchflow/platform/service"
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
}

func (c *Config) register(fs *flag.FlagSet) {
	c.Common.RegisterFlags(fs, ":8082")
	fs.StringVar(&c.RulesFile, "rules", "", "payroll rules YAML file (required)")
	fs.StringVar(&c.Durable, "durable", "transformer", "durable consumer name shared by all replicas")
	fs.DurationVar(&c.AckWait, "ack-wait", 30*time.Second, "how long a delivered message may stay unacknowledged")
	fs.IntVar(&c.MaxDeliver, "max-deliver", 8, "delivery budget before a failing message is dead-lettered")
	fs.IntVar(&c.MaxAckPending, "max-ack-pending", 4096, "unacknowledged messages allowed per consumer across replicas")
	fs.IntVar(&c.InFlight, "in-flight", 1024, "publishes awaiting acknowledgement per replica")
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
	errs = append(errs, c.Common.Validate())
	return errors.Join(errs...)
}

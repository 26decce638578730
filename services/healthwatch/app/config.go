package app

import (
	"errors"
	"flag"
	"time"

	"github.com/punchflow/punchflow/platform/service"
)

// Config is healthwatch's configuration.
type Config struct {
	service.Common
	Durable    string
	AckWait    time.Duration
	MaxDeliver int
}

func (c *Config) register(fs *flag.FlagSet) {
	c.Common.RegisterFlags(fs, ":8084")
	fs.StringVar(&c.Durable, "durable", "healthwatch", "durable consumer name shared by all replicas")
	fs.DurationVar(&c.AckWait, "ack-wait", 30*time.Second, "how long a delivered heartbeat may stay unacknowledged")
	fs.IntVar(&c.MaxDeliver, "max-deliver", 8, "delivery budget before a failing heartbeat is dead-lettered")
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
	errs = append(errs, c.Common.Validate())
	return errors.Join(errs...)
}

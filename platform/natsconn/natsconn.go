// Package natsconn connects to NATS with the options every punchflow service
// takes: a URL list, credentials, NKey, TLS, reconnecting forever with
// backoff, and asynchronous errors (permission violations above all) logged
// and counted instead of lost.
package natsconn

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// Options are the connection settings. The zero value plus a URL connects
// without authentication.
type Options struct {
	URLs      string // comma-separated
	CredsFile string // a .creds file (JWT + NKey seed)
	NKeyFile  string // a file holding an NKey seed
	TLSCA     string
	TLSCert   string
	TLSKey    string
	// InboxPrefix replaces "_INBOX" as the prefix of reply subjects
	// (request replies, JetStream publish acknowledgements, pull-consumer
	// deliveries). With a prefix of its own per service, NATS permissions
	// can let each service subscribe to its own replies only (see
	// deploy/nats).
	InboxPrefix string
	// MaxReconnectWait caps the reconnect backoff.
	MaxReconnectWait time.Duration
}

// RegisterFlags adds the nats-* flags to fs.
func (o *Options) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.URLs, "nats-url", nats.DefaultURL, "NATS server URLs, comma-separated")
	fs.StringVar(&o.CredsFile, "nats-creds-file", "", "NATS credentials file (JWT and NKey seed)")
	fs.StringVar(&o.NKeyFile, "nats-nkey-file", "", "file holding an NKey seed to authenticate with")
	fs.StringVar(&o.TLSCA, "nats-tls-ca", "", "CA certificate file to verify the NATS server")
	fs.StringVar(&o.TLSCert, "nats-tls-cert", "", "client certificate file for mutual TLS")
	fs.StringVar(&o.TLSKey, "nats-tls-key", "", "client key file for mutual TLS")
	fs.StringVar(&o.InboxPrefix, "nats-inbox-prefix", nats.InboxPrefix[:len(nats.InboxPrefix)-1], "prefix of reply subjects; give each service its own (e.g. _INBOX_collector) when NATS permissions restrict subscriptions")
	fs.DurationVar(&o.MaxReconnectWait, "nats-max-reconnect-wait", 10*time.Second, "longest wait between reconnect attempts")
}

// Validate checks that the options are complete.
func (o *Options) Validate() error {
	if strings.TrimSpace(o.URLs) == "" {
		return errors.New("nats-url is empty: give at least one server, for example nats://127.0.0.1:4222")
	}
	if (o.TLSCert == "") != (o.TLSKey == "") {
		return errors.New("nats-tls-cert and nats-tls-key go together: give both or neither")
	}
	if o.CredsFile != "" && o.NKeyFile != "" {
		return errors.New("nats-creds-file and nats-nkey-file are alternatives: give one")
	}
	if o.MaxReconnectWait <= 0 {
		return errors.New("nats-max-reconnect-wait must be positive")
	}
	if o.InboxPrefix != "" && (strings.ContainsAny(o.InboxPrefix, "*> \t") || strings.HasPrefix(o.InboxPrefix, ".") || strings.HasSuffix(o.InboxPrefix, ".") || strings.Contains(o.InboxPrefix, "..")) {
		return fmt.Errorf("nats-inbox-prefix %q must be a subject without wildcards, spaces or a leading or trailing dot, e.g. _INBOX_collector", o.InboxPrefix)
	}
	return nil
}

// AsyncErrorCounter counts asynchronous errors by kind ("permission",
// "slow_consumer", "other"). It is satisfied by a Prometheus CounterVec
// wrapper; nil is allowed.
type AsyncErrorCounter interface {
	Inc(kind string)
}

// Connect dials NATS. It does not wait for the first connection: with
// RetryOnFailedConnect the returned connection keeps trying in the
// background, and readiness reports it until it is up. The caller owns the
// connection and drains it at shutdown.
func Connect(o Options, name string, log *slog.Logger, errs AsyncErrorCounter) (*nats.Conn, error) {
	opts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true),
		nats.CustomReconnectDelay(func(attempts int) time.Duration {
			return reconnectDelay(attempts, o.MaxReconnectWait)
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("nats reconnected", "url", nc.ConnectedUrlRedacted())
		}),
		nats.ConnectHandler(func(nc *nats.Conn) {
			log.Info("nats connected", "url", nc.ConnectedUrlRedacted())
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			kind := "other"
			switch {
			case errors.Is(err, nats.ErrPermissionViolation) || strings.Contains(strings.ToLower(err.Error()), "permissions violation"):
				kind = "permission"
			case errors.Is(err, nats.ErrSlowConsumer):
				kind = "slow_consumer"
			}
			if errs != nil {
				errs.Inc(kind)
			}
			attrs := []any{"kind", kind, "err", err}
			if sub != nil {
				attrs = append(attrs, "subject", sub.Subject)
			}
			log.Error("nats async error", attrs...)
		}),
	}
	if o.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(o.CredsFile))
	}
	if o.NKeyFile != "" {
		opt, err := nats.NkeyOptionFromSeed(o.NKeyFile)
		if err != nil {
			return nil, fmt.Errorf("nats nkey file %s: %w", o.NKeyFile, err)
		}
		opts = append(opts, opt)
	}
	if o.InboxPrefix != "" && o.InboxPrefix+"." != nats.InboxPrefix {
		opts = append(opts, nats.CustomInboxPrefix(o.InboxPrefix))
	}
	if o.TLSCA != "" {
		opts = append(opts, nats.RootCAs(o.TLSCA))
	}
	if o.TLSCert != "" {
		opts = append(opts, nats.ClientCert(o.TLSCert, o.TLSKey))
	}
	nc, err := nats.Connect(o.URLs, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to nats %s: %w", o.URLs, err)
	}
	return nc, nil
}

// reconnectDelay grows from 250ms doubling to max, with up to 20% jitter so a
// fleet of replicas does not reconnect in lockstep.
func reconnectDelay(attempts int, max time.Duration) time.Duration {
	d := 250 * time.Millisecond
	for i := 1; i < attempts && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	return d + time.Duration(rand.Int64N(int64(d)/5+1))
}

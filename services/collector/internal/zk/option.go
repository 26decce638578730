package zk

import "time"

// Option configures a Client.
type Option func(*config)

type config struct {
	udp          bool
	commKey      uint32
	hasKey       bool
	timeout      time.Duration
	chunkTimeout time.Duration
	retries      int
	chunkSize    int
	recordSize   int
	userSize     int
	legacy       bool
}

func defaultConfig() config {
	return config{timeout: 5 * time.Second, chunkTimeout: 10 * time.Second, retries: 2}
}

// WithUDP makes the Client speak UDP instead of TCP (MA300, ZEM500-class and
// other UDP-only units).
func WithUDP() Option { return func(c *config) { c.udp = true } }

// WithCommKey sets the device's numeric comm key (password), used when the
// device answers CMD_CONNECT with CMD_ACK_UNAUTH.
func WithCommKey(key uint32) Option {
	return func(c *config) { c.commKey, c.hasKey = key, true }
}

// WithTimeout sets how long one request waits for its reply (default 5 s).
// The context's deadline, when earlier, wins.
func WithTimeout(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.timeout = d
		}
	}
}

// WithChunkTimeout sets how long one chunk of a bulk read may take, from the
// CMD_READ_BUFFER request to its last byte (default 10 s).
func WithChunkTimeout(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.chunkTimeout = d
		}
	}
}

// WithRetries sets how many times a chunk of a bulk read is requested again
// after a timeout or a short answer, and how many times a request is resent
// over UDP after a timeout (default 2). TCP requests other than chunks are not
// resent: the stream does not lose them.
func WithRetries(n int) Option {
	return func(c *config) {
		if n >= 0 {
			c.retries = n
		}
	}
}

// WithChunkSize sets the CMD_READ_BUFFER chunk size (default ChunkSizeTCP or
// ChunkSizeUDP). Lower it for slow links.
func WithChunkSize(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.chunkSize = n
		}
	}
}

// WithRecordSize forces the attendance record size (8, 16, 40 or more)
// instead of inferring it from the dataset length and the record count.
func WithRecordSize(n int) Option { return func(c *config) { c.recordSize = n } }

// WithUserSize forces the user record size (28, 72 or more) instead of
// inferring it.
func WithUserSize(n int) Option { return func(c *config) { c.userSize = n } }

// WithLegacyRead makes bulk reads use the legacy direct commands
// (CMD_ATTLOG_RRQ, CMD_USERTEMP_RRQ) instead of the buffered path. Without it
// the Client falls back to them only when the device rejects
// CMD_PREPARE_BUFFER.
func WithLegacyRead() Option { return func(c *config) { c.legacy = true } }

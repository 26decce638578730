// Package platform is the root of punchflow's narrow shared platform module:
// process plumbing that every service needs and that holds no domain logic.
//
//   - cli: the thin main
//   - config: flags, PUNCHFLOW_* environment, optional YAML file
//   - logging: slog with tint in a terminal, JSON elsewhere
//   - natsconn: NATS connection options and async error handling
//   - topology: streams, consumers and KV buckets, created idempotently
//   - ops: the /healthz, /readyz and /metrics HTTP server
//   - metrics: the pipeline counters and histograms every service exports
//   - fault: the permanent/transient error vocabulary
//   - dispose: the one function that turns a handler's result into Ack, NakWithDelay or DLQ+Term
//   - service: the common flags and start-up shared by the four services
//   - natstest, dbtest: helpers for tests against real servers
package platform

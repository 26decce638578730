// Package natstest starts real, in-process NATS servers with JetStream for
// tests and demos: port chosen by the OS, store in a directory of the caller's.
package natstest

import (
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Start runs a JetStream-enabled server on 127.0.0.1 with a random port and
// its store in dir. The caller shuts it down.
func Start(dir string) (*server.Server, error) {
	opts := &server.Options{
		ServerName: "punchflow-embedded",
		Host:       "127.0.0.1",
		Port:       -1,
		JetStream:  true,
		StoreDir:   dir,
		NoLog:      true,
		NoSigs:     true,
		// Tests and the demo publish bursts; keep the limits generous.
		MaxPayload: 8 << 20,
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats-server: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("embedded nats-server did not become ready within 10s")
	}
	return s, nil
}

// Run starts a server for one test and shuts it down when the test ends.
func Run(tb testing.TB) *server.Server {
	tb.Helper()
	s, err := Start(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s
}

package service

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/punchflow/punchflow/platform/natstest"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func start(t *testing.T, args ...string) (*Runtime, *lockedBuffer) {
	t.Helper()
	ns := natstest.Run(t)
	fs := flag.NewFlagSet("svc", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var c Common
	c.RegisterFlags(fs, "127.0.0.1:0")
	args = append([]string{"--nats-url", ns.ClientURL(), "--log-format", "json", "--shutdown-timeout", "5s"}, args...)
	if help, err := Parse(fs, args, func(string) string { return "" }, c.Validate); help || err != nil {
		t.Fatalf("Parse: %v", err)
	}
	logs := &lockedBuffer{}
	rt, err := Start(context.Background(), "svc", c, fs, logs)
	if err != nil {
		t.Fatal(err)
	}
	return rt, logs
}

func status(t *testing.T, rt *Runtime, path string) int {
	t.Helper()
	resp, err := http.Get("http://" + rt.Ops.Addr() + path)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestRunLifecycle(t *testing.T) {
	rt, logs := start(t)
	if _, err := rt.JS.Stream(context.Background(), "RAW"); err != nil {
		t.Fatalf("provisioning did not create RAW: %v", err)
	}
	cons, err := rt.BindConsumer(context.Background(), "RAW", jetstream.ConsumerConfig{Durable: "w", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil || cons == nil {
		t.Fatalf("BindConsumer: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	readyDuringDrain := make(chan error, 1)
	workerStarted := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- rt.Run(ctx, func(ctx context.Context) error {
			close(workerStarted)
			<-ctx.Done()
			// While a worker drains, readiness is already false.
			readyDuringDrain <- rt.Ops.Ready(context.Background())
			return nil
		})
	}()
	<-workerStarted
	deadline := time.Now().Add(5 * time.Second)
	for status(t, rt, "/readyz") != 200 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if status(t, rt, "/readyz") != 200 {
		t.Fatal("never ready")
	}
	if status(t, rt, "/metrics") != 200 || status(t, rt, "/healthz") != 200 {
		t.Fatal("ops endpoints down")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after cancel = %v, want nil", err)
	}
	if err := <-readyDuringDrain; err == nil {
		t.Fatal("ready while draining")
	}
	if !rt.NC.IsClosed() {
		t.Fatal("NATS connection not closed after Run")
	}
	if !strings.Contains(logs.String(), "stopped cleanly") {
		t.Fatalf("logs lack the clean stop:\n%s", logs.String())
	}
}

func TestRunWorkerErrorStopsTheRest(t *testing.T) {
	rt, _ := start(t)
	boom := errors.New("boom")
	otherStopped := make(chan struct{})
	err := rt.Run(context.Background(),
		func(ctx context.Context) error { return boom },
		func(ctx context.Context) error { <-ctx.Done(); close(otherStopped); return nil },
	)
	if !errors.Is(err, boom) {
		t.Fatalf("Run = %v, want boom", err)
	}
	select {
	case <-otherStopped:
	default:
		t.Fatal("the other worker was not stopped")
	}
}

func TestParseErrorsSayWhatToFix(t *testing.T) {
	fs := flag.NewFlagSet("svc", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var c Common
	c.RegisterFlags(fs, ":0")
	_, err := Parse(fs, []string{"--js-replicas", "4", "--log-format", "xml", "--shutdown-timeout", "0s"}, func(string) string { return "" }, c.Validate)
	if err == nil || !strings.Contains(err.Error(), "invalid configuration") || !strings.Contains(err.Error(), "shutdown-timeout must be positive") {
		t.Fatalf("Parse = %v", err)
	}
	if _, err := Start(context.Background(), "svc", Common{LogFormat: "xml", LogLevel: "info"}, fs, io.Discard); err == nil || !strings.Contains(err.Error(), "use auto, json or text") {
		t.Fatalf("Start with a bad log format = %v", err)
	}
}

func TestLogsMaskSecrets(t *testing.T) {
	ns := natstest.Run(t)
	withPassword := strings.Replace(ns.ClientURL(), "nats://", "nats://pfuser:hunter2@", 1)
	rt, logs := start(t, "--nats-url", withPassword)
	defer rt.Close()
	if !rt.NC.IsConnected() && rt.NC.Status().String() == "CLOSED" {
		t.Fatal("connection closed")
	}
	out := logs.String()
	if !strings.Contains(out, "pfuser") || strings.Contains(out, "hunter2") {
		t.Fatalf("the effective configuration must show the user and hide the password:\n%s", out)
	}
}

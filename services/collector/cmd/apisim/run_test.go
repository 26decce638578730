package main

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/punchflow/punchflow/proto"
	"github.com/punchflow/punchflow/services/collector/internal/apisource"
	"github.com/punchflow/punchflow/services/collector/internal/extract"
	"github.com/punchflow/punchflow/services/collector/internal/sources"
)

type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

type memSink struct{ n int }

func (m *memSink) Record(context.Context, proto.RawRecord) error { m.n++; return nil }
func (m *memSink) Reject(_ context.Context, r extract.Reject) error {
	return errors.New("unexpected reject: " + r.Reason)
}

// TestServesAndWritesTheSourcesFile runs the command, reads its sources
// file as the collector does, and reads one day of every dataset through it.
func TestServesAndWritesTheSourcesFile(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	file := filepath.Join(t.TempDir(), "sources.yaml")
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuf
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--listen", addr, "--records", "3100", "--oauth-client", "collector:s3cret", "--sources-file", file,
			"--styles", "link,payments:cursor"}, func(k string) string {
			if k == "APISIM_SEED" {
				return "9"
			}
			return ""
		}, &out, &out)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "Ctrl-C stops") {
		if time.Now().After(deadline) {
			t.Fatalf("not started:\n%s", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(out.String(), "export APISIM_CLIENT_SECRET=s3cret") {
		t.Fatalf("output:\n%s", out.String())
	}
	f, err := sources.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	set, err := f.Open(ctx, nil, func(k string) string {
		if k == "APISIM_CLIENT_SECRET" {
			return "s3cret"
		}
		return ""
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	day := extract.Window{From: time.Date(2025, 8, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2025, 8, 2, 0, 0, 0, 0, time.UTC)}
	for _, e := range set {
		var sink memSink
		if err := e.Source.Extract(ctx, day, &sink); err != nil {
			t.Fatalf("%s: %v", e.Source.Name(), err)
		}
		if sink.n != 100 {
			t.Errorf("%s: %d records on the first day, want 100 (3100 over 31 days)", e.Source.Name(), sink.n)
		}
	}
	if p := f.API[2].Pagination.Style; p != apisource.StyleCursor || f.API[0].Pagination.Style != apisource.StyleLink {
		t.Errorf("styles %s %s", f.API[0].Pagination.Style, p)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "stopped: ") {
		t.Fatalf("output:\n%s", out.String())
	}
	_ = os.Remove(file)
}

func TestBadSettings(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--from", "Aug 1"}, "--from"},
		{[]string{"--basic", "nopassword"}, "user:password"},
		{[]string{"--records", "0"}, "--records 0"},
		{[]string{"--listen", "127.0.0.1:0", "--sources-file", "x.yaml", "--styles", "orders:pages"}, `style "pages"`},
	} {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err := run(ctx, tc.args, func(string) string { return "" }, &syncBuf{}, &syncBuf{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
}

package csvsource

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/segmentio/encoding/json"

	"github.com/punchflow/punchflow/proto"
	"github.com/punchflow/punchflow/services/collector/internal/jstest"
)

// harness is a CSV source on an embedded JetStream (jstest).
type harness struct {
	*jstest.Env
	dir string
	src *Source
}

func newHarness(t *testing.T, chunk int) *harness {
	t.Helper()
	env := jstest.Start(t, false)
	dir := t.TempDir()
	src, err := New(Config{Name: "drop", Dir: dir, ChunkLines: chunk, Defaults: Defaults{Site: "hq"}}, env.JS, env.DLQ, env.KV, env.Metrics, env.Log)
	if err != nil {
		t.Fatal(err)
	}
	return &harness{Env: env, dir: dir, src: src}
}

func (h *harness) write(t *testing.T, name string, lines ...string) string {
	t.Helper()
	p := filepath.Join(h.dir, name)
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// streamMsgs reads every message of a stream.
func (h *harness) streamMsgs(t *testing.T, stream string) []jetstream.Msg {
	t.Helper()
	return h.Msgs(t, stream, "")
}

func punchLines(n int) []string {
	lines := []string{"user_id,device_serial,device_time,state"}
	for i := 0; i < n; i++ {
		lines = append(lines, fmt.Sprintf("%04d,DEV1,2026-11-02 08:%02d:%02d,0", i, i/60%60, i%60))
	}
	return lines
}

func TestRunOncePublishesDeadLettersAndMovesAside(t *testing.T) {
	h := newHarness(t, 7)
	lines := append(punchLines(20), "0099,DEV1,not a time,0", "", "0098,DEV1,2026-11-02 09:00:00,x")
	h.write(t, "export.csv", lines...)
	res, err := h.src.RunOnce(context.Background(), "run-1")
	if err != nil {
		t.Fatal(err)
	}
	if res.Files != 1 || res.Published != 20 || res.Rejected != 2 {
		t.Fatalf("result = %+v", res)
	}
	raw := h.streamMsgs(t, "RAW")
	if len(raw) != 20 {
		t.Fatalf("RAW has %d punches, want 20", len(raw))
	}
	p, err := proto.DecodeRawPunch(raw[0].Data())
	if err != nil {
		t.Fatal(err)
	}
	if raw[0].Headers().Get(proto.HeaderMsgID) != p.ID || raw[0].Subject() != "raw.punch.hq.DEV1" || p.Source != "csv:drop" || p.RunID != "run-1" || p.UserID != "0000" {
		t.Fatalf("first punch %s %+v headers %v", raw[0].Subject(), p, raw[0].Headers())
	}
	dlq := h.streamMsgs(t, "DLQ")
	if len(dlq) != 2 {
		t.Fatalf("DLQ has %d, want 2", len(dlq))
	}
	d, err := proto.DeadLetterFromHeader(dlq[0].Headers())
	if err != nil {
		t.Fatal(err)
	}
	if d.SourceFile != "export.csv" || d.SourceLine != 22 || string(dlq[0].Data()) != "0099,DEV1,not a time,0" || d.CorrelationID != "run-1" {
		t.Fatalf("dead letter %+v body %q", d, dlq[0].Data())
	}
	if _, err := os.Stat(filepath.Join(h.dir, "done", "export.csv")); err != nil {
		t.Fatalf("file not moved aside: %v", err)
	}
	// The same content under another name is recognised and skipped.
	h.write(t, "export-copy.csv", lines...)
	res, err = h.src.RunOnce(context.Background(), "run-2")
	if err != nil || res.Skipped != 1 || res.Published != 0 {
		t.Fatalf("second run = %+v, %v", res, err)
	}
	if n := len(h.streamMsgs(t, "RAW")); n != 20 {
		t.Fatalf("RAW has %d after the copy, want 20", n)
	}
}

func TestRunOnceResumesFromCheckpoint(t *testing.T) {
	h := newHarness(t, 10)
	path := h.write(t, "big.csv", punchLines(50)...)
	sum, err := fileSHA256(path)
	if err != nil {
		t.Fatal(err)
	}
	// A previous run published lines 2..31 (the first 30 punches) and crashed.
	cp, _ := json.Marshal(Checkpoint{File: "big.csv", SHA256: sum, LinesDone: 31, Published: 30})
	if _, err := h.KV.Put(context.Background(), "csv.drop."+sum[:32], cp); err != nil {
		t.Fatal(err)
	}
	res, err := h.src.RunOnce(context.Background(), "run-2")
	if err != nil {
		t.Fatal(err)
	}
	if res.Published != 20 {
		t.Fatalf("resumed run published %d, want the remaining 20", res.Published)
	}
	raw := h.streamMsgs(t, "RAW")
	first, _ := proto.DecodeRawPunch(raw[0].Data())
	if len(raw) != 20 || first.UserID != "0030" {
		t.Fatalf("RAW has %d, first user %s; want 20 starting at 0030", len(raw), first.UserID)
	}
	e, err := h.KV.Get(context.Background(), "csv.drop."+sum[:32])
	if err != nil {
		t.Fatal(err)
	}
	var done Checkpoint
	_ = json.Unmarshal(e.Value(), &done)
	if !done.Done || done.Published != 50 || done.LinesDone != 51 {
		t.Fatalf("final checkpoint = %+v", done)
	}
}

func TestRunOnceBadHeaderLeavesFile(t *testing.T) {
	h := newHarness(t, 10)
	h.write(t, "odd.csv", "who,when", "1,2026-11-02 08:00:00")
	_, err := h.src.RunOnce(context.Background(), "run-1")
	if err == nil || !strings.Contains(err.Error(), "line 1") || !strings.Contains(err.Error(), "lacks user_id, device_time") {
		t.Fatalf("error = %v", err)
	}
	if _, statErr := os.Stat(filepath.Join(h.dir, "odd.csv")); statErr != nil {
		t.Fatal("a file with an unusable header must stay where the operator can fix it")
	}
}

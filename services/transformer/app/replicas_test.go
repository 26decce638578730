package app

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/punchflow/punchflow/platform/servicetest"
	"github.com/punchflow/punchflow/proto"
	"github.com/punchflow/punchflow/services/transformer/internal/roster"
	"github.com/punchflow/punchflow/services/transformer/internal/rules"
)

// manyPunches returns n distinct punches of people at two sites, and a
// roster file that knows all but every 50th of them.
func manyPunches(n int) ([]proto.RawPunch, string) {
	var csv strings.Builder
	csv.WriteString("site,user_id,person_id,name,department,shift\n")
	const users = 2000
	sites := []string{"hq", "plant"}
	for u := range users {
		if u%50 != 0 {
			fmt.Fprintf(&csv, "%s,%05d,emp-%d,,dept-%d,\n", sites[u%2], u, u, u%7)
		}
	}
	out := make([]proto.RawPunch, 0, n)
	start := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	for i := 0; len(out) < n; i++ {
		u, day := i%users, i/users
		at := start.AddDate(0, 0, day/2).Add(time.Duration(8*3600+(day%2)*9*3600+(u*7)%3600) * time.Second)
		out = append(out, proto.NewRawPunch(proto.RawPunch{
			Source: "zk:x", SourceKind: "zk_tcp", Site: sites[u%2], DeviceSerial: fmt.Sprintf("DEV%02d", u%16),
			UserID: fmt.Sprintf("%05d", u), DeviceTime: proto.FormatLocalTime(at), State: day % 2, VerifyMode: 1,
			CollectedAt: at.Add(72 * time.Hour), RunID: "run-big",
		}))
	}
	return out, csv.String()
}

const replicaRules = `
default_time_zone: UTC
sites:
  hq: {time_zone: America/New_York, shift: day}
  plant: {time_zone: Asia/Kolkata, shift: day}
shifts:
  day: {start: "09:00", end: "17:00", late_grace: 5m, overtime_min: 30m}
`

// TestThreeReplicas runs three transformers on one durable consumer over
// 100,000 punches; one of them leaves half-way. Every expected clean event
// is in CLEAN exactly once by id, nothing is missing, and every replica did
// part of the work.
func TestThreeReplicas(t *testing.T) {
	const n = 100_000
	began := time.Now()
	ns := natsServer(t)
	dir := t.TempDir()
	rulesPath := writeFile(t, dir, "rules.yaml", replicaRules)
	punches, rosterCSV := manyPunches(n)
	rosterPath := writeFile(t, dir, "roster.csv", rosterCSV)

	// What the events must be: the pure core over the same inputs, computed
	// while the services run.
	want := make(map[string]bool, n)
	wantDone := make(chan error, 1)
	go func() {
		rs, err := rules.Parse([]byte(replicaRules))
		if err != nil {
			wantDone <- err
			return
		}
		ros, err := roster.Parse("roster.csv", []byte(rosterCSV))
		if err != nil {
			wantDone <- err
			return
		}
		for _, p := range punches {
			ev, err := rs.Apply(p, ros, proto.Lineage{})
			if err != nil {
				wantDone <- err
				return
			}
			want[ev.ID] = true
		}
		wantDone <- nil
	}()

	args := []string{"--rules", rulesPath, "--roster", rosterPath}
	replicas := []*running{start(t, ns, args...), start(t, ns, args...), start(t, ns, args...)}
	js := connect(t, ns)

	// Every clean event as published (before CLEAN's de-duplication), by id.
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	var mu sync.Mutex
	published := make(map[string]int, n)
	sub, err := nc.Subscribe("clean.attendance.>", func(m *nats.Msg) {
		if m.Header.Get(proto.HeaderMsgID) == "" { // not a publish (an ack reply)
			return
		}
		mu.Lock()
		published[m.Header.Get(proto.HeaderMsgID)]++
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		t.Fatal(err)
	}

	publishBulk(t, ns, js, punches[:n/2], n/2)
	// The third replica leaves while the second half arrives.
	servicetest.WaitFor(t, "the third replica to take part", 60*time.Second, func() (bool, string) {
		got := replicas[2].metric(t, `punchflow_transformer_published_total{kind="attendance_event"}`)
		return got > 0, fmt.Sprint(got)
	})
	leftWith := replicas[2].metric(t, `punchflow_transformer_published_total{kind="attendance_event"}`)
	go replicas[2].stop(t)
	publishBulk(t, ns, js, punches[n/2:], n)
	waitIdle(t, js, "transformer")
	if err := <-wantDone; err != nil {
		t.Fatal(err)
	}
	if len(want) != n {
		t.Fatalf("%d distinct expected ids for %d punches", len(want), n)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	servicetest.WaitFor(t, "the subscriber to see every publish", 30*time.Second, func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return len(published) >= n, fmt.Sprint(len(published))
	})
	mu.Lock()
	defer mu.Unlock()
	var missing, unexpected, republished int
	for id, c := range published {
		republished += c - 1
		if !want[id] {
			unexpected++
		}
	}
	for id := range want {
		if published[id] == 0 {
			missing++
		}
	}
	info, err := js.Stream(context.Background(), "CLEAN")
	if err != nil {
		t.Fatal(err)
	}
	si, err := info.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// CLEAN de-duplicates by Nats-Msg-Id, so holding exactly n messages
	// when exactly the n expected ids were published means each is there
	// once.
	if si.State.Msgs != n || missing != 0 || unexpected != 0 {
		t.Fatalf("CLEAN holds %d events; of the %d ids published %d are missing and %d unexpected; want exactly the %d expected, once each",
			si.State.Msgs, len(published), missing, unexpected, n)
	}
	for i, r := range replicas[:2] {
		if got := r.metric(t, `punchflow_transformer_published_total{kind="attendance_event"}`); got == 0 {
			t.Errorf("replica %d published nothing", i+1)
		}
	}
	if leftWith == 0 {
		t.Errorf("replica 3 published nothing before it left")
	}
	msgs := readStream(t, js, "CLEAN", "clean.attendance.hq", 1)
	// A sample decodes and carries its lineage.
	for _, ev := range decodeEvents(t, msgs[:min(100, len(msgs))]) {
		if ev.Lineage.RawSequence == 0 || ev.Lineage.RawID == "" || ev.Shift != "day" {
			t.Fatalf("event %+v lacks lineage or shift", ev)
		}
	}
	if os.Getenv("PUNCHFLOW_TEST_VERBOSE") != "" || testing.Verbose() {
		t.Logf("%d punches through 3 replicas (one leaving half-way) in %v; %d republished after a redelivery and de-duplicated by CLEAN",
			n, time.Since(began).Round(time.Millisecond), republished)
	}
}

package app

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/punchflow/punchflow/platform/servicetest"
	"github.com/punchflow/punchflow/platform/topology"
	"github.com/punchflow/punchflow/proto"
	"github.com/punchflow/punchflow/services/transformer/internal/roster"
)

const appRules = `
default_time_zone: UTC
sites:
  hq:
    time_zone: America/New_York
    shift: day
shifts:
  day:
    start: "09:00"
    end: "17:00"
    late_grace: 5m
records:
  orders:
    natural_key: [order_id]
    timestamp: created
    fields:
      order_id: {path: id, type: string, required: true}
      total: {path: total, type: number}
      created: {path: created_at, type: time}
`

func punchAt(site, serial, user, devTime string, state int) proto.RawPunch {
	wall, err := proto.ParseLocalTime(devTime)
	if err != nil {
		panic(err)
	}
	return proto.NewRawPunch(proto.RawPunch{
		Source: "zk:" + serial, SourceKind: "zk_tcp", Site: site, DeviceSerial: serial, UserID: user,
		DeviceTime: devTime, State: state, VerifyMode: 1, RunID: "run-" + user,
		CollectedAt: wall.Add(48 * time.Hour),
	})
}

func rawMsg(t testing.TB, subject string, m proto.Message, id string) *nats.Msg {
	t.Helper()
	b, err := proto.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	return &nats.Msg{Subject: subject, Data: b, Header: nats.Header{proto.HeaderMsgID: {id}}}
}

// TestService runs the transformer through Run: punches and records in,
// clean events and records out with lineage, bad input in the dead-letter
// stream with its reason, a raw duplicate published once, and a roster file
// change applied without a restart.
func TestService(t *testing.T) {
	ns := natsServer(t)
	dir := t.TempDir()
	rulesPath := writeFile(t, dir, "rules.yaml", appRules)
	rosterPath := writeFile(t, dir, "roster.csv", "site,user_id,person_id,name,department,shift\nhq,0042,emp-1,Ada,office,\n")
	tr := start(t, ns, "--rules", rulesPath, "--roster", rosterPath, "--roster-poll", "100ms")
	js := connect(t, ns)

	known := punchAt("hq", "D1", "0042", "2026-01-14T09:12:00", 0)
	unknown := punchAt("hq", "D1", "0099", "2026-01-14T08:50:00", 0)
	old := punchAt("hq", "D1", "0042", "1999-12-31T23:59:00", 0)
	created := time.Date(2026, 1, 14, 10, 0, 0, 0, time.UTC)
	order := proto.NewRawRecord(proto.RawRecord{Source: "orders", NaturalKey: "o-1", CollectedAt: created, RunID: "run-o",
		Payload: []byte(`{"id":"o-1","total":"12.5","created_at":"2026-01-14T10:00:00Z"}`)})
	badOrder := proto.NewRawRecord(proto.RawRecord{Source: "orders", NaturalKey: "o-2", CollectedAt: created, RunID: "run-o",
		Payload: []byte(`{"total":3}`)})
	publishRaw(t, js, []*nats.Msg{
		rawMsg(t, proto.RawPunchSubject("hq", "D1"), &known, known.ID),
		rawMsg(t, proto.RawPunchSubject("hq", "D1"), &unknown, unknown.ID),
		rawMsg(t, proto.RawPunchSubject("hq", "D1"), &old, old.ID),
		{Subject: proto.RawPunchSubject("hq", "D1"), Data: []byte(`{"id":"x","user_id":`), Header: nats.Header{proto.HeaderMsgID: {"garbage"}}},
		rawMsg(t, proto.RawRecordSubject("orders"), &order, order.ID),
		rawMsg(t, proto.RawRecordSubject("orders"), &badOrder, badOrder.ID),
		// The same punch again under another message id (as a re-read
		// device log could produce after the duplicate window): RAW keeps
		// both, the clean event is the same and published once.
		rawMsg(t, proto.RawPunchSubject("hq", "D1"), &known, "re-read-"+known.ID),
	})

	dead := readDLQ(t, js, 3)
	events := decodeEvents(t, readStream(t, js, "CLEAN", "clean.attendance.>", 2))
	records := readStream(t, js, "CLEAN", "clean.record.>", 1)

	// Wait until all seven raw messages are settled, then count outputs.
	waitIdle(t, js, "transformer")
	if acked := tr.metric(t, "punchflow_transformer_acked_total"); acked != 4 {
		t.Errorf("acked_total = %v, want 4 (3 dead-lettered ones are terminated, not acknowledged)", acked)
	}
	events = decodeEvents(t, readStream(t, js, "CLEAN", "clean.attendance.>", 2))
	if len(events) != 2 {
		t.Fatalf("%d attendance events, want 2 (the re-read duplicate published once)", len(events))
	}
	byUser := map[string]proto.AttendanceEvent{}
	for _, ev := range events {
		byUser[ev.UserID] = ev
	}
	k := byUser["0042"]
	if k.PersonID != "emp-1" || k.Department != "office" || k.Shift != "day" || k.LateMinutes != 12 || !slices.Equal(k.Flags, []string{"late"}) ||
		k.TimeZone != "America/New_York" || k.WorkDate != "2026-01-14" || k.RosterVersion == "" {
		t.Errorf("known user's event = %+v", k)
	}
	if k.Lineage.RawID != known.ID || k.Lineage.RawSubject != "raw.punch.hq.D1" || k.Lineage.RawStream != "RAW" || k.Lineage.RawSequence == 0 ||
		k.Lineage.RunID != "run-0042" || k.ID != proto.AttendanceID(known.ID, k.RulesVersion, k.RosterVersion) {
		t.Errorf("known user's lineage or id = %+v / %s", k.Lineage, k.ID)
	}
	if u := byUser["0099"]; u.PersonID != "" || !slices.Contains(u.Flags, "unknown_user") || u.Direction != "in" {
		t.Errorf("unknown user's event = %+v, want it published with flag unknown_user", u)
	}
	rec, err := proto.DecodeCleanRecord(records[0].Data())
	if err != nil {
		t.Fatal(err)
	}
	if rec.Fields["total"] != 12.5 || rec.NaturalKey != "o-1" || rec.OccurredAt == nil || !rec.OccurredAt.Equal(created) ||
		rec.Lineage.RawSubject != "raw.record.orders" || records[0].Subject() != "clean.record.orders" {
		t.Errorf("clean record = %+v on %s", rec, records[0].Subject())
	}

	reasons := map[string]proto.DeadLetter{}
	for _, d := range dead {
		if d.Stage != proto.StageTransform || d.OriginalSeq == 0 || d.OriginalStream != "RAW" {
			t.Errorf("dead letter %+v lacks stage, stream or sequence", d)
		}
		switch {
		case d.ReasonCode == proto.ReasonDecode:
			reasons["decode"] = d
		case d.ReasonCode == proto.ReasonInvalid && strings.HasPrefix(d.Reason, "too_old:"):
			reasons["too_old"] = d
		case d.ReasonCode == proto.ReasonInvalid && strings.HasPrefix(d.Reason, "missing_field:"):
			reasons["missing_field"] = d
		default:
			t.Errorf("unexpected dead letter %+v", d)
		}
	}
	if len(reasons) != 3 || reasons["too_old"].MsgID != old.ID || !strings.Contains(reasons["missing_field"].Reason, "order_id") {
		t.Errorf("dead letters = %+v, want decode, too_old (with the punch id) and missing_field order_id", dead)
	}

	// HR fixes the roster; the running transformer picks it up.
	writeFile(t, dir, "roster.csv", "site,user_id,person_id,name,department,shift\nhq,0042,emp-1,Ada,office,\nhq,0099,emp-99,Zed,office,\n")
	servicetest.WaitFor(t, "the roster change", 10*time.Second, func() (bool, string) {
		return tr.metric(t, "punchflow_transformer_roster_entries") == 2, ""
	})
	later := punchAt("hq", "D1", "0099", "2026-01-15T08:55:00", 0)
	publishPunches(t, js, []proto.RawPunch{later})
	events = decodeEvents(t, readStream(t, js, "CLEAN", "clean.attendance.>", 3))
	if ev := events[len(events)-1]; ev.PersonID != "emp-99" || slices.Contains(ev.Flags, "unknown_user") {
		t.Errorf("after the roster fix: %+v", ev)
	}
	if got := tr.metric(t, `punchflow_transformer_flags_total{flag="unknown_user"}`); got != 1 {
		t.Errorf("flags_total{unknown_user} = %v, want 1", got)
	}

	// A broken roster file keeps the last good roster.
	writeFile(t, dir, "roster.csv", "site,user_id\nhq,0042\n")
	servicetest.WaitFor(t, "the broken roster to be refused", 10*time.Second, func() (bool, string) {
		return tr.metric(t, `punchflow_transformer_roster_reloads_total{outcome="error"}`) >= 1, ""
	})
	if got := tr.metric(t, "punchflow_transformer_roster_entries"); got != 2 {
		t.Errorf("roster entries after a broken file = %v, want the last good 2", got)
	}
}

// TestRosterKV: the roster follows a KV bucket; puts, updates and deletes
// apply to the next punch without a restart, and a new replica starts with
// what the bucket holds.
func TestRosterKV(t *testing.T) {
	ns := natsServer(t)
	rulesPath := writeFile(t, t.TempDir(), "rules.yaml", appRules)
	tr := start(t, ns, "--rules", rulesPath, "--roster-kv")
	js := connect(t, ns)
	ctx := context.Background()
	kv, err := js.KeyValue(ctx, "transformer_roster")
	if err != nil {
		t.Fatal(err)
	}
	put := func(e roster.Entry) {
		if _, err := kv.Put(ctx, roster.KVKey(e.Site, e.UserID), roster.KVValue(e)); err != nil {
			t.Fatal(err)
		}
	}
	entries := func(r *running, n float64) {
		servicetest.WaitFor(t, fmt.Sprintf("%v roster entries", n), 10*time.Second, func() (bool, string) {
			got := r.metric(t, "punchflow_transformer_roster_entries")
			return got == n, fmt.Sprint(got)
		})
	}
	// latest waits for the n-th event and returns it.
	latest := func(n int) proto.AttendanceEvent {
		evs := decodeEvents(t, readStream(t, js, "CLEAN", "clean.attendance.>", n))
		if len(evs) != n {
			t.Fatalf("%d events, want %d", len(evs), n)
		}
		return evs[n-1]
	}

	put(roster.Entry{Site: "hq", UserID: "A.7", PersonID: "emp-7", Department: "office"})
	if _, err := kv.Put(ctx, "hq.broken", []byte(`{"name":"no person id"}`)); err != nil {
		t.Fatal(err)
	}
	entries(tr, 1)
	publishPunches(t, js, []proto.RawPunch{punchAt("hq", "D1", "A.7", "2026-01-14T09:00:00", 0)})
	if ev := latest(1); ev.PersonID != "emp-7" || ev.Department != "office" {
		t.Errorf("after put: %+v", ev)
	}
	put(roster.Entry{Site: "hq", UserID: "A.7", PersonID: "emp-7", Department: "warehouse"})
	// The update reaches the transformer asynchronously: punch (a new one
	// each time) until an event shows it.
	tries := 0
	servicetest.WaitFor(t, "the update", 10*time.Second, func() (bool, string) {
		tries++
		publishPunches(t, js, []proto.RawPunch{punchAt("hq", "D1", "A.7", fmt.Sprintf("2026-01-15T09:%02d:%02d", tries/60%60, tries%60), 0)})
		ev := latest(tries + 1)
		return ev.Department == "warehouse", ev.Department
	})
	if err := kv.Delete(ctx, roster.KVKey("hq", "A.7")); err != nil {
		t.Fatal(err)
	}
	entries(tr, 0)
	publishPunches(t, js, []proto.RawPunch{punchAt("hq", "D1", "A.7", "2026-01-16T09:00:00", 0)})
	if ev := latest(tries + 2); ev.PersonID != "" || !slices.Contains(ev.Flags, "unknown_user") {
		t.Errorf("after delete: %+v", ev)
	}
	if !strings.Contains(tr.Logs.String(), "hq.broken") {
		t.Errorf("the broken entry was not reported in the logs")
	}

	put(roster.Entry{Site: "hq", UserID: "B", PersonID: "emp-b"})
	tr.stop(t)
	second := start(t, ns, "--rules", rulesPath, "--roster-kv")
	entries(second, 1)
}

// TestTransientFailure: while CLEAN cannot take the output, the raw punch is
// delayed with NakWithDelay, never acknowledged, and dead-lettered with
// retries_spent once the delivery budget is spent; once CLEAN is back,
// punches flow again.
func TestTransientFailure(t *testing.T) {
	ns := natsServer(t)
	js := connect(t, ns)
	ctx := context.Background()
	var top topology.Config
	top.RawStream, top.CleanStream, top.DLQStream, top.Memory, top.Replicas = "RAW", "CLEAN", "DLQ", true, 1
	top.RawMaxAge, top.CleanMaxAge, top.DLQMaxAge, top.DuplicateWindow = time.Hour, time.Hour, time.Hour, time.Minute
	var clean jetstream.StreamConfig
	for _, s := range top.Streams() {
		switch s.Name {
		case "RAW", "DLQ":
			if _, err := js.CreateStream(ctx, s); err != nil {
				t.Fatal(err)
			}
		case "CLEAN":
			clean = s
		}
	}
	rulesPath := writeFile(t, t.TempDir(), "rules.yaml", appRules)
	tr := start(t, ns, "--rules", rulesPath, "--provision=false", "--max-deliver", "3")

	lost := punchAt("hq", "D1", "0042", "2026-01-14T09:00:00", 0)
	publishPunches(t, js, []proto.RawPunch{lost})
	dead := readDLQ(t, js, 1)
	if d := dead[0]; d.ReasonCode != proto.ReasonRetriesSpent || d.Deliveries != 3 || d.MsgID != lost.ID || !strings.Contains(d.Reason, "publish") {
		t.Errorf("dead letter = %+v, want retries_spent after 3 deliveries", d)
	}
	if got := tr.metric(t, "punchflow_transformer_nak_delayed_total"); got != 2 {
		t.Errorf("nak_delayed_total = %v, want 2 (deliveries 1 and 2)", got)
	}
	if got := tr.metric(t, "punchflow_transformer_acked_total"); got != 0 {
		t.Errorf("acked_total = %v, want 0: nothing was published", got)
	}

	if _, err := js.CreateStream(ctx, clean); err != nil {
		t.Fatal(err)
	}
	ok := punchAt("hq", "D1", "0042", "2026-01-15T09:00:00", 0)
	publishPunches(t, js, []proto.RawPunch{ok})
	if evs := decodeEvents(t, readStream(t, js, "CLEAN", "clean.attendance.>", 1)); evs[0].Lineage.RawID != ok.ID || evs[0].Reprocessed {
		t.Errorf("after recovery: %+v, want the punch, not marked reprocessed (delivered once)", evs[0])
	}

	// A punch whose first delivery failed and whose second one succeeds is
	// marked reprocessed: the first attempt may have been published.
	if err := js.DeleteStream(ctx, "CLEAN"); err != nil {
		t.Fatal(err)
	}
	retried := punchAt("hq", "D1", "0042", "2026-01-16T09:00:00", 0)
	publishPunches(t, js, []proto.RawPunch{retried})
	servicetest.WaitFor(t, "a delayed delivery", 10*time.Second, func() (bool, string) {
		got := tr.metric(t, "punchflow_transformer_nak_delayed_total")
		return got == 3, fmt.Sprint("nak_delayed_total ", got)
	})
	if _, err := js.CreateStream(ctx, clean); err != nil {
		t.Fatal(err)
	}
	if evs := decodeEvents(t, readStream(t, js, "CLEAN", "clean.attendance.>", 1)); evs[0].Lineage.RawID != retried.ID || !evs[0].Reprocessed {
		t.Errorf("after a redelivery: %+v, want the punch marked reprocessed", evs[0])
	}
}

package status

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/segmentio/encoding/json"
)

func report() Report {
	at := time.Date(2026, 3, 1, 7, 58, 0, 0, time.UTC)
	return Report{
		GeneratedAt: at,
		Window:      "1h0m0s",
		Sinks: []SinkStatus{
			{
				Sink: "postgres",
				Consumer: ConsumerState{Name: "loader-postgres", Subjects: []string{"clean.record.>"}, Pending: 1200, AckPending: 800,
					Redelivered: 3, DeliveredSeq: 5000, AckFloorSeq: 4200},
				Batches: Batches{Committed: 4, Failed: 1, Inserted: 4000, Duplicates: 17, Recent: []Batch{
					{ID: "postgres-a-5", StartedAt: at, Rows: 1000, Inserted: 0, FirstSeq: 4001, LastSeq: 5000, DurationMS: 3,
						Outcome: "failed", Error: "copy into business_records: ERROR: invalid input syntax\nfor type json"},
					{ID: "postgres-a-4", StartedAt: at.Add(-time.Second), Rows: 1000, Inserted: 983, Duplicates: 17, FirstSeq: 3001, LastSeq: 4000,
						DurationMS: 41, Outcome: "committed"},
				}},
				DeadLetters: map[string]uint64{"rejected_by_sink": 2, "decode": 1},
			},
			{
				Sink:        "sqlite",
				Consumer:    ConsumerState{Name: "loader-sqlite", Error: "consumer loader-sqlite on CLEAN: consumer not found"},
				Batches:     Batches{Error: "read recent batches of sqlite: unable to open database file"},
				DeadLetters: map[string]uint64{},
			},
		},
		DeadLetters: DeadLetters{Total: 4, BySink: map[string]map[string]uint64{
			"postgres": {"rejected_by_sink": 2, "decode": 1},
			"unknown":  {"invalid": 1},
		}},
	}
}

func TestWriteTable(t *testing.T) {
	var b bytes.Buffer
	if err := report().WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	t.Logf("\n%s", out)
	for _, want := range []string{
		"SINK      CONSUMER",
		"postgres  loader-postgres  clean.record.>  1200     800          2000  3",
		"sqlite    loader-sqlite                    ?        ?            ?     ?            ?",
		"postgres-a-5  1000  0         0           4001-5000  3ms   failed: copy into business_records: ERROR: invalid input syntax for type json",
		"postgres-a-4  1000  983       17          3001-4000  41ms  committed",
		"dead letters: decode=1 rejected_by_sink=2",
		"consumer: consumer loader-sqlite on CLEAN: consumer not found",
		"batches: read recent batches of sqlite: unable to open database file",
		"dead letters of the load stage: 4",
		"without a sink header: invalid=1",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q", want)
		}
	}
}

func TestWriteJSON(t *testing.T) {
	var b bytes.Buffer
	r := report()
	if err := r.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	if diff := cmp.Diff(r, back); diff != "" {
		t.Errorf("JSON round trip (-want +got):\n%s", diff)
	}
	if !strings.Contains(b.String(), `"ack_pending": 800`) {
		t.Errorf("JSON lacks the consumer's ack_pending:\n%s", b.String())
	}
}

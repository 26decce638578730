package rules

import (
	"bytes"
	stdjson "encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/punchflow/punchflow/proto"
	"github.com/punchflow/punchflow/services/transformer/internal/roster"
)

var updateGoldens = flag.Bool("update-proto-goldens", false, "rewrite proto/testdata/golden/attendance_event/v1.1-*.json from the raw goldens")

// protoGolden is the wire contract's testdata, next to this module.
const protoGolden = "../../../../proto/testdata/golden"

// TestProtoGoldens holds the 1.1 attendance event goldens of proto to what
// this engine makes of the raw punch goldens under testdata/golden-rules.yaml
// and testdata/golden-roster.csv, so the contract's examples are real output.
func TestProtoGoldens(t *testing.T) {
	rulesFile, err := os.ReadFile("../../testdata/golden-rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r, err := Parse(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	rosterFile, err := os.ReadFile("../../testdata/golden-roster.csv")
	if err != nil {
		t.Fatal(err)
	}
	ros, err := roster.Parse("golden-roster.csv", rosterFile)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		raw, golden string
		lin         proto.Lineage
	}{
		{"v1.0-full.json", "v1.1-late-in-rounded.json",
			proto.Lineage{RawSubject: "raw.punch.hq.CQUJ190460155", RawStream: "RAW", RawSequence: 104857, CorrelationID: "1c2d3e4f5a6b4c7d8e9f0a1b2c3d4e5f"}},
		{"v1.1-zk-clock-offset.json", "v1.1-overtime-clock-corrected.json",
			proto.Lineage{RawSubject: "raw.punch.hq.CQUJ190460155", RawStream: "RAW", RawSequence: 105211}},
		{"v1.0-adms-overnight.json", "v1.1-overnight-early-leave.json",
			proto.Lineage{RawSubject: "raw.punch.plant-2.BJ2C203260417", RawStream: "RAW", RawSequence: 118230}},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			rawData, err := os.ReadFile(filepath.Join(protoGolden, "raw_punch", tt.raw))
			if err != nil {
				t.Fatal(err)
			}
			p, err := proto.DecodeRawPunch(rawData)
			if err != nil {
				t.Fatal(err)
			}
			ev, err := r.Apply(p, ros, tt.lin)
			if err != nil {
				t.Fatal(err)
			}
			ev.ProcessedAt = p.CollectedAt.Add(1850 * time.Millisecond)
			path := filepath.Join(protoGolden, "attendance_event", tt.golden)
			if ev.SchemaVersion != proto.SchemaVersion {
				t.Errorf("engine stamps schema version %q, want %q", ev.SchemaVersion, proto.SchemaVersion)
			}
			// A golden file is frozen at the version its name gives (the
			// engine's output at a later minor version is the same message
			// but for the stamp).
			frozen := ev
			frozen.SchemaVersion = strings.TrimPrefix(strings.SplitN(tt.golden, "-", 2)[0], "v")
			if *updateGoldens {
				b, err := proto.Encode(&frozen)
				if err != nil {
					t.Fatal(err)
				}
				var out bytes.Buffer
				if err := stdjson.Indent(&out, b, "", "  "); err != nil {
					t.Fatal(err)
				}
				out.WriteByte('\n')
				if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -run TestProtoGoldens -update-proto-goldens)", err)
			}
			want, err := proto.DecodeAttendanceEvent(data)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, frozen); diff != "" {
				t.Errorf("engine output differs from %s (-golden +engine):\n%s", path, diff)
			}
		})
	}
}

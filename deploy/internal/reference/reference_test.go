package reference

import (
	"bytes"
	"flag"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite docs/reference/wire.md")

const (
	protoDir = "../../../proto"
	wireDoc  = "../../../docs/reference/wire.md"
)

// TestWireReferenceUpToDate regenerates the reference and compares it with
// the committed docs/reference/wire.md: a change to the wire contract must
// come with the regenerated document (make docs).
func TestWireReferenceUpToDate(t *testing.T) {
	got, err := Generate(protoDir)
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := WriteIfChanged(wireDoc, got); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(wireDoc)
	if err != nil {
		t.Fatalf("%v (generate it with make docs)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("docs/reference/wire.md is out of date with proto/ and platform/topology: run make docs")
	}
	for _, want := range []string{"raw.punch.hq.CQUJ190460155", "Nats-Msg-Id", "Punchflow-Dlq-Reason-Code", "### RawPunch", "| RAW |"} {
		if !strings.Contains(string(got), want) {
			t.Errorf("the reference lacks %q", want)
		}
	}
}

func TestGenerateRefusesUnknownBuilders(t *testing.T) {
	saved := subjectExamples["DLQSubject"]
	delete(subjectExamples, "DLQSubject")
	defer func() { subjectExamples["DLQSubject"] = saved }()
	if _, err := Generate(protoDir); err == nil || !strings.Contains(err.Error(), "proto.DLQSubject has no example") {
		t.Fatalf("Generate without an example for a builder: %v", err)
	}
}

package proto_test

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/punchflow/punchflow/proto"
)

var updateSeeds = flag.Bool("update", false, "rewrite the fuzz seed corpora in testdata/fuzz from the golden, compat and invalid files")

func FuzzDecodeRawPunch(f *testing.F)        { fuzzDecode(f, proto.KindRawPunch) }
func FuzzDecodeRawRecord(f *testing.F)       { fuzzDecode(f, proto.KindRawRecord) }
func FuzzDecodeHeartbeat(f *testing.F)       { fuzzDecode(f, proto.KindHeartbeat) }
func FuzzDecodeAttendanceEvent(f *testing.F) { fuzzDecode(f, proto.KindAttendanceEvent) }
func FuzzDecodeCleanRecord(f *testing.F)     { fuzzDecode(f, proto.KindCleanRecord) }

// fuzzDecode checks that decoding never panics, that every error is
// classified, and that a message that decodes survives encode→decode
// unchanged. Seeds: testdata/fuzz/<FuzzName>/.
func fuzzDecode(f *testing.F, kind string) {
	c := codecFor(f, kind)
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := c.decode(data)
		if err != nil {
			if !errors.Is(err, proto.ErrInvalid) && !errors.Is(err, proto.ErrUnsupportedVersion) {
				t.Fatalf("error %v wraps neither ErrInvalid nor ErrUnsupportedVersion", err)
			}
			return
		}
		encodeDecode(t, c, m)
	})
}

// FuzzDeadLetterFromHeader feeds header blocks, one "Key: value" per line,
// to DeadLetterFromHeader. A dead letter it accepts must survive both of its
// forms unchanged: Header→DeadLetterFromHeader and Encode→DecodeDeadLetter.
func FuzzDeadLetterFromHeader(f *testing.F) {
	c := codecFor(f, proto.KindDeadLetter)
	f.Fuzz(func(t *testing.T, block []byte) {
		dl, err := proto.DeadLetterFromHeader(parseHeaderBlock(block))
		if err != nil {
			if !errors.Is(err, proto.ErrInvalid) && !errors.Is(err, proto.ErrUnsupportedVersion) {
				t.Fatalf("error %v wraps neither ErrInvalid nor ErrUnsupportedVersion", err)
			}
			return
		}
		h := dl.Header()
		back, err := proto.DeadLetterFromHeader(h)
		if err != nil {
			t.Fatalf("headers of an accepted dead letter are refused: %v\n%q", err, h)
		}
		if diff := cmp.Diff(dl, back, roundTrip); diff != "" {
			t.Fatalf("Header→DeadLetterFromHeader changed the dead letter (-first +second):\n%s", diff)
		}
		encodeDecode(t, c, &dl)
	})
}

// parseHeaderBlock reads one "Key: value" per line; a key may repeat.
func parseHeaderBlock(b []byte) map[string][]string {
	h := map[string][]string{}
	for line := range strings.SplitSeq(string(b), "\n") {
		if line == "" {
			continue
		}
		k, v, _ := strings.Cut(line, ": ")
		h[k] = append(h[k], v)
	}
	return h
}

func formatHeaderBlock(h map[string][]string) []byte {
	var b bytes.Buffer
	for _, k := range slices.Sorted(maps.Keys(h)) {
		for _, v := range h[k] {
			fmt.Fprintf(&b, "%s: %s\n", k, v)
		}
	}
	return b.Bytes()
}

func codecFor(tb testing.TB, kind string) codec {
	for _, c := range codecs() {
		if c.kind == kind {
			return c
		}
	}
	tb.Fatalf("no codec for %q", kind)
	return codec{}
}

// TestFuzzSeeds keeps the checked-in seed corpora in step with the golden,
// compat and invalid files they are made from. Run it with -update to
// rewrite them.
func TestFuzzSeeds(t *testing.T) {
	want := map[string][]byte{} // path → corpus file
	add := func(fuzzName, seedName string, data []byte) {
		path := filepath.Join("testdata", "fuzz", fuzzName, seedName)
		want[path] = fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", data)
	}
	targets := map[string]string{
		proto.KindRawPunch:        "FuzzDecodeRawPunch",
		proto.KindRawRecord:       "FuzzDecodeRawRecord",
		proto.KindHeartbeat:       "FuzzDecodeHeartbeat",
		proto.KindAttendanceEvent: "FuzzDecodeAttendanceEvent",
		proto.KindCleanRecord:     "FuzzDecodeCleanRecord",
	}
	for kind, name := range targets {
		for _, dir := range []string{"golden", "compat", "invalid"} {
			for _, file := range testFiles(t, dir, kind) {
				add(name, dir+"-"+strings.TrimSuffix(filepath.Base(file), ".json"), readFile(t, file))
			}
		}
	}
	for _, dir := range []string{"golden", "compat"} {
		for _, file := range testFiles(t, dir, proto.KindDeadLetter) {
			dl, err := proto.DecodeDeadLetter(readFile(t, file))
			if err != nil {
				continue // the 2.0 message
			}
			seed := dir + "-" + strings.TrimSuffix(filepath.Base(file), ".json")
			add("FuzzDeadLetterFromHeader", seed, formatHeaderBlock(dl.Header()))
			if dir == "golden" && strings.Contains(seed, "full") {
				dl.SchemaVersion = "2.0"
				add("FuzzDeadLetterFromHeader", "compat-v2.0", formatHeaderBlock(dl.Header()))
			}
		}
	}

	if *updateSeeds {
		// Seeds made from test files are rewritten; found crashers stay.
		old, _ := filepath.Glob(filepath.Join("testdata", "fuzz", "*", "*"))
		for _, f := range old {
			if strings.HasPrefix(filepath.Base(f), "crash-") {
				continue
			}
			if err := os.Remove(f); err != nil {
				t.Fatal(err)
			}
		}
		for path, b := range want {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for path, b := range want {
		got, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(got, b) {
			t.Errorf("%s is missing or stale (run go test -run TestFuzzSeeds -update): %v", path, err)
		}
	}
	for _, name := range append(slices.Collect(maps.Values(targets)), "FuzzDeadLetterFromHeader") {
		files, _ := filepath.Glob(filepath.Join("testdata", "fuzz", name, "*"))
		for _, f := range files {
			if _, ok := want[f]; !ok && !strings.HasPrefix(filepath.Base(f), "crash-") {
				t.Errorf("%s is not made from a test file; keep found crashers as crash-<what>", f)
			}
		}
	}
}

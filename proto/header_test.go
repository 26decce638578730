package proto_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/punchflow/punchflow/proto"
)

var traceparentPattern = regexp.MustCompile(`^00-[0-9a-f]{32}-[0-9a-f]{16}-01$`)

func TestNewTraceparent(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		tp := proto.NewTraceparent()
		if !traceparentPattern.MatchString(tp) {
			t.Fatalf("NewTraceparent() = %q, want %s", tp, traceparentPattern)
		}
		if seen[tp] {
			t.Fatalf("NewTraceparent() repeated %q", tp)
		}
		seen[tp] = true
	}
}

func TestChildTraceparent(t *testing.T) {
	const (
		traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
		spanID  = "00f067aa0ba902b7"
	)
	tests := []struct {
		name, parent string
		keepsTrace   bool
		wantFlags    string
	}{
		{"sampled parent", "00-" + traceID + "-" + spanID + "-01", true, "01"},
		{"unsampled parent keeps its flags", "00-" + traceID + "-" + spanID + "-00", true, "00"},
		{"ours", proto.NewTraceparent(), true, "01"},
		{"empty", "", false, "01"},
		{"garbage", "not-a-trace-parent", false, "01"},
		{"uppercase trace id", "00-" + strings.ToUpper(traceID) + "-" + spanID + "-01", false, "01"},
		{"non-hex trace id", "00-" + strings.Repeat("z", 32) + "-" + spanID + "-01", false, "01"},
		{"all-zero trace id", "00-" + strings.Repeat("0", 32) + "-" + spanID + "-01", false, "01"},
		{"all-zero span id", "00-" + traceID + "-" + strings.Repeat("0", 16) + "-01", false, "01"},
		{"short span id", "00-" + traceID + "-00f067aa-01", false, "01"},
		{"bad flags", "00-" + traceID + "-" + spanID + "-1", false, "01"},
		{"version ff", "ff-" + traceID + "-" + spanID + "-01", false, "01"},
		{"extra field", "00-" + traceID + "-" + spanID + "-01-x", false, "01"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			child := proto.ChildTraceparent(tt.parent)
			if !regexp.MustCompile(`^00-[0-9a-f]{32}-[0-9a-f]{16}-` + tt.wantFlags + `$`).MatchString(child) {
				t.Fatalf("ChildTraceparent(%q) = %q, want a version 00 traceparent with flags %s", tt.parent, child, tt.wantFlags)
			}
			parts := strings.Split(child, "-")
			if tt.wantFlags == "01" && !traceparentPattern.MatchString(child) {
				t.Errorf("child %q does not match %s", child, traceparentPattern)
			}
			pparts := strings.Split(tt.parent, "-")
			if got := len(pparts) > 1 && parts[1] == pparts[1]; got != tt.keepsTrace {
				t.Errorf("child %q of %q keeps the trace id: %v, want %v", child, tt.parent, got, tt.keepsTrace)
			}
			if len(pparts) > 2 && parts[2] == pparts[2] {
				t.Errorf("child %q reuses the parent's span id", child)
			}
			if strings.Trim(parts[1], "0") == "" || strings.Trim(parts[2], "0") == "" {
				t.Errorf("child %q has an all-zero id", child)
			}
		})
	}
}

func TestNewCorrelationID(t *testing.T) {
	a, b := proto.NewCorrelationID(), proto.NewCorrelationID()
	if !idPattern.MatchString(a) || !idPattern.MatchString(b) {
		t.Errorf("NewCorrelationID() = %q, %q, want 32 lowercase hex characters", a, b)
	}
	if a == b {
		t.Errorf("NewCorrelationID() repeated %q", a)
	}
}

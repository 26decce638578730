package fault

import (
	"errors"
	"fmt"
	"testing"

	"github.com/punchflow/punchflow/proto"
)

func TestClassify(t *testing.T) {
	_, invalid := proto.DecodeRawPunch([]byte(`{"id":"x"}`))
	tests := []struct {
		name       string
		err        error
		wantClass  Class
		wantReason string
	}{
		{"unclassified is transient", errors.New("connection reset"), Transient, ""},
		{"explicit transient", NewTransient(errors.New("timeout")), Transient, ""},
		{"permanent keeps its reason", NewPermanent(proto.ReasonRejectedBySink, errors.New("check violated")), Permanent, proto.ReasonRejectedBySink},
		{"wrapped permanent", fmt.Errorf("write batch: %w", Permanentf(proto.ReasonBadLine, "line %d", 3)), Permanent, proto.ReasonBadLine},
		{"contract violation", invalid, Permanent, proto.ReasonInvalid},
		{"newer major version", fmt.Errorf("decode: %w", proto.ErrUnsupportedVersion), Permanent, proto.ReasonInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			class, reason := Classify(tt.err)
			if class != tt.wantClass || reason != tt.wantReason {
				t.Fatalf("Classify = %v %q, want %v %q", class, reason, tt.wantClass, tt.wantReason)
			}
		})
	}
	if !errors.Is(NewTransient(errInner), errInner) {
		t.Fatal("NewTransient hides the cause from errors.Is")
	}
}

var errInner = errors.New("inner")

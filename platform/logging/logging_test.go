package logging

import (
	"bytes"
	"strings"
	"testing"

	"github.com/segmentio/encoding/json"
)

func TestNew(t *testing.T) {
	tests := []struct {
		name, format, level string
		wantJSON            bool
		wantErr             string
	}{
		{"auto on a buffer is json", "auto", "info", true, ""},
		{"forced json", "json", "debug", true, ""},
		{"forced text", "text", "info", false, ""},
		{"bad format", "xml", "info", false, "use auto, json or text"},
		{"bad level", "json", "loud", false, "use debug, info, warn or error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			log, err := New(&b, tt.format, tt.level, "loader")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			log.Info("batch committed", KeyBatch, "b-1")
			var rec map[string]any
			isJSON := json.Unmarshal(b.Bytes(), &rec) == nil
			if isJSON != tt.wantJSON {
				t.Fatalf("output %q: json = %v, want %v", b.String(), isJSON, tt.wantJSON)
			}
			if !strings.Contains(b.String(), "loader") || !strings.Contains(b.String(), "b-1") {
				t.Fatalf("output lacks service or attribute: %q", b.String())
			}
		})
	}
}

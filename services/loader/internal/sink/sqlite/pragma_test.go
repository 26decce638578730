package sqlite

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestPragmas checks the settings the sink's connection runs with.
func TestPragmas(t *testing.T) {
	tests := []struct {
		name string
		opts []Option
		want map[string]string
	}{
		{
			name: "defaults",
			want: map[string]string{"journal_mode": "wal", "busy_timeout": "5000", "synchronous": "1", "foreign_keys": "1"},
		},
		{
			name: "options",
			opts: []Option{WithBusyTimeout(250 * time.Millisecond), WithSynchronousFull()},
			want: map[string]string{"journal_mode": "wal", "busy_timeout": "250", "synchronous": "2", "foreign_keys": "1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(t.Context(), filepath.Join(t.TempDir(), "p.db"), nil, tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			got := map[string]string{}
			for name := range tt.want {
				var v string
				if err := s.db.QueryRowContext(t.Context(), "PRAGMA "+name).Scan(&v); err != nil {
					t.Fatalf("PRAGMA %s: %v", name, err)
				}
				got[name] = v
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("pragmas (-want +got):\n%s", diff)
			}
		})
	}
}

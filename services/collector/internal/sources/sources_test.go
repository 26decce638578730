package sources

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseInheritsDefaultsAndChecksEverything(t *testing.T) {
	f, err := Parse([]byte(`
defaults: {interval: 2m, lookback: 10m, chunk_days: 5, mode: parallel}
api:
  - name: shop
    base_url: https://shop.example.com
    key_fields: [id]
    schedule: {chunk_days: 2, workers: 8}
sql:
  - name: hr
    driver: postgres
    dsn_env: HR_DSN
    table: hr.leave
    key_columns: [id]
    cursor_column: updated_at
    schedule: {mode: sequential, interval: 30s}
`))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"shop", "hr"}, f.Names()); diff != "" {
		t.Fatal(diff)
	}
	shop := f.API[0].Schedule.over(f.Defaults).over(builtin)
	hr := f.SQL[0].Schedule.over(f.Defaults).over(builtin)
	want := Settings{Interval: 2 * time.Minute, Lookback: 10 * time.Minute, ChunkDays: 2, Mode: Parallel, Workers: 8}
	if diff := cmp.Diff(want, shop); diff != "" {
		t.Fatalf("shop (-want +got):\n%s", diff)
	}
	want = Settings{Interval: 30 * time.Second, Lookback: 10 * time.Minute, ChunkDays: 5, Mode: Sequential, Workers: 4}
	if diff := cmp.Diff(want, hr); diff != "" {
		t.Fatalf("hr (-want +got):\n%s", diff)
	}
	if s := shop.Schedule(); s.Initial != 24*time.Hour || s.MaxWindow != 24*time.Hour || s.Interval != 2*time.Minute {
		t.Fatalf("schedule %+v", s)
	}

	_, err = Parse([]byte(`
defaults: {chunk_days: 40}
api:
  - {name: a, base_url: 'http://h', key_fields: [id], schedule: {mode: fast}}
  - {name: a, base_url: 'http://h', key_fields: [id], pagnation: {style: page}}
sql:
  - {name: b, driver: oracle, dsn: x, table: t, key_columns: [id], cursor_column: u}
`))
	for _, want := range []string{"field pagnation not found"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not say %q", err, want)
		}
	}
	_, err = Parse([]byte(`
defaults: {chunk_days: 40}
api:
  - {name: a, base_url: 'http://h', key_fields: [id], schedule: {mode: fast}}
  - {name: a, base_url: 'http://h', key_fields: [id]}
sql:
  - {name: b, driver: oracle, dsn: x, table: t, key_columns: [id], cursor_column: u}
`))
	for _, want := range []string{`source "a": chunk_days 40 must be from 1 to 30`, `source "a": mode "fast"`, `source name "a" is used twice`, `driver "oracle"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not say %q", err, want)
		}
	}
	if _, err := Parse([]byte("defaults: {}\n")); err == nil || !strings.Contains(err.Error(), "declares no source") {
		t.Errorf("empty file: %v", err)
	}
}

func TestOpenOnlyTheNamedSources(t *testing.T) {
	f, err := Parse([]byte(`
api:
  - {name: a, base_url: 'http://h', key_fields: [id]}
  - {name: b, base_url: 'http://h', key_fields: [id], auth: {type: bearer, token_env: B_TOKEN}}
`))
	if err != nil {
		t.Fatal(err)
	}
	set, err := f.Open(context.Background(), []string{"a"}, func(string) string { return "" }, nil)
	if err != nil || len(set) != 1 || set[0].Source.Name() != "a" {
		t.Fatalf("open a: %v %v", set, err)
	}
	if _, ok := set.Lookup("b"); ok {
		t.Fatal("b was opened")
	}
	if _, err := f.Open(context.Background(), nil, func(string) string { return "" }, nil); err == nil || !strings.Contains(err.Error(), "B_TOKEN is not set") {
		t.Fatalf("open all: %v", err)
	}
	if _, err := f.Open(context.Background(), []string{"c"}, nil, nil); err == nil || !strings.Contains(err.Error(), "unknown source(s) [c]") {
		t.Fatalf("open c: %v", err)
	}
}

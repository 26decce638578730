package main

import (
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	in := `goos: linux
pkg: github.com/punchflow/punchflow/services/loader/internal/sink/postgres
BenchmarkPostgresCopy/rows=500-2    	      10	   5000000 ns/op	    100000 rows/s	    2048 B/op	      12 allocs/op
PASS
pkg: github.com/punchflow/punchflow/proto
BenchmarkDecodeRawPunch-2   	 1000000	      1100 ns/op	     320 B/op	       4 allocs/op
ok  	github.com/punchflow/punchflow/proto	1.2s
`
	var out strings.Builder
	if err := run(strings.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{"services/loader/internal/sink/postgres", "PostgresCopy/rows=500-2", "100000", "rows/s", "DecodeRawPunch-2", "1100"} {
		if !strings.Contains(got, want) {
			t.Errorf("table lacks %q:\n%s", want, got)
		}
	}
	if lines := strings.Count(got, "\n"); lines != 3 {
		t.Errorf("table has %d lines, want header + 2 rows:\n%s", lines, got)
	}
}

func TestRunNoResults(t *testing.T) {
	if err := run(strings.NewReader("PASS\n"), &strings.Builder{}); err == nil {
		t.Fatal("no error for input without benchmarks")
	}
}

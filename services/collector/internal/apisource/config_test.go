package apisource

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/punchflow/punchflow/services/collector/internal/extract"
)

func TestValidateSaysWhatToFix(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		want []string
	}{
		{"empty", Config{}, []string{"name is required", "base_url", "key_fields is required"}},
		{"bad choices", Config{Name: "x", BaseURL: "ftp://h", KeyFields: []string{"id"}, Pagination: Pagination{Style: "pages"},
			TimeLayout: "iso", Auth: Auth{Type: "jwt"}, Query: map[string]string{"from": "{{.From | rfc3339"}},
			[]string{`base_url "ftp://h"`, `pagination style "pages"`, `time_layout "iso"`, `auth type "jwt"`, "query from"}},
		{"auth without secret", Config{Name: "x", BaseURL: "http://h", KeyFields: []string{"id"}, Auth: Auth{Type: "oauth2"}},
			[]string{"token_url and client_id", "client_secret_env"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if err == nil {
				t.Fatal("valid")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
	ok := Config{Name: "x", BaseURL: "https://api.example.com/v2", KeyFields: []string{"id"}}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	if ok.Pagination.Style != StyleNone || ok.Retry.Attempts != 8 || ok.Timeout != 30*time.Second {
		t.Fatalf("defaults %+v", ok)
	}
}

func TestQueryTemplatesRenderTheWindow(t *testing.T) {
	cfg := Config{Name: "q", BaseURL: "http://h/api?fixed=1", KeyFields: []string{"id"}, Query: map[string]string{
		"a": "{{.From | rfc3339}}", "b": "{{.To | date}}", "c": "{{.Last | datetime}}", "d": "{{.From | unix}}",
		"e": "{{.To | unixms}}", "f": `{{format "02/01/2006" .From}}`, "g": "all",
	}}
	src, err := New(cfg, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	from := time.Date(2025, 8, 1, 0, 0, 0, 0, time.UTC)
	q, err := src.firstURL(extract.Window{From: from, To: from.AddDate(0, 0, 3)})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"fixed": "1", "a": "2025-08-01T00:00:00Z", "b": "2025-08-04", "c": "2025-08-03 23:59:59",
		"d": "1754006400", "e": "1754265600000", "f": "01/08/2025", "g": "all"}
	got := map[string]string{}
	for k := range q {
		got[k] = q.Get(k)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("query (-want +got):\n%s", diff)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 8, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"3", 3 * time.Second, true},
		{"0.25", 250 * time.Millisecond, true},
		{"0", 0, true},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0, true},
		{"", 0, false},
		{"-1", 0, false},
		{"soon", 0, false},
	}
	for _, tc := range cases {
		got, ok := ParseRetryAfter(tc.in, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ParseRetryAfter(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestNextLink(t *testing.T) {
	cases := []struct {
		name   string
		values []string
		want   string
	}{
		{"github style", []string{`<https://api.x/r?page=2>; rel="next", <https://api.x/r?page=9>; rel="last"`}, "https://api.x/r?page=2"},
		{"next not first", []string{`</r?page=1>; rel="prev", </r?page=3>; rel=next`}, "/r?page=3"},
		{"several rels", []string{`</r?c=a,b>; rel="next last"`}, "/r?c=a,b"},
		{"two headers", []string{`</a>; rel="prev"`, `</b>; rel="next"`}, "/b"},
		{"none", []string{`</r?page=1>; rel="prev"`}, ""},
		{"garbage", []string{`next please`}, ""},
	}
	for _, tc := range cases {
		if got := nextLink(tc.values); got != tc.want {
			t.Errorf("%s: nextLink = %q, want %q", tc.name, got, tc.want)
		}
	}
}

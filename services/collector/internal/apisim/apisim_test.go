package apisim

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestDataIsDeterministicAndOrdered(t *testing.T) {
	from := time.Date(2025, 8, 1, 0, 0, 0, 0, time.UTC)
	for _, ds := range Datasets {
		a := &data{ds: ds, seed: 42, n: 5000, from: from, to: from.AddDate(0, 0, 30)}
		b := &data{ds: ds, seed: 42, n: 5000, from: from, to: from.AddDate(0, 0, 30)}
		c := &data{ds: ds, seed: 43, n: 5000, from: from, to: from.AddDate(0, 0, 30)}
		for k := 0; k < 5000; k++ {
			if k > 0 && a.at(k).Before(a.at(k-1)) {
				t.Fatalf("%s: record %d is older than record %d", ds, k, k-1)
			}
			if at := a.at(k); at.Before(from) || !at.Before(from.AddDate(0, 0, 30)) {
				t.Fatalf("%s: record %d at %v", ds, k, at)
			}
		}
		for _, k := range []int{0, 17, 4999} {
			ra, rb := string(a.appendRecord(nil, k)), string(b.appendRecord(nil, k))
			if ra != rb || ra == string(c.appendRecord(nil, k)) || !json.Valid([]byte(ra)) || !strings.Contains(ra, Key(ds, k)) {
				t.Fatalf("%s record %d: %s / %s", ds, k, ra, rb)
			}
		}
		lo, hi := a.index(from.AddDate(0, 0, 3), from.AddDate(0, 0, 4))
		if hi-lo < 150 || hi-lo > 185 || a.at(lo).Before(from.AddDate(0, 0, 3)) || !a.at(lo-1).Before(from.AddDate(0, 0, 3)) {
			t.Fatalf("%s day 4: [%d, %d)", ds, lo, hi)
		}
	}
}

func get(t *testing.T, h http.Handler, url string) (*http.Response, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", url, nil))
	b, _ := io.ReadAll(rec.Result().Body)
	return rec.Result(), string(b)
}

func TestFaultsAndErrors(t *testing.T) {
	s, err := New(Config{Seed: 1, Records: 100, Faults: Faults{RetryAfter: 1500 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	h := s.Handler()
	q := "?from=2025-08-01T00:00:00Z&to=2025-09-01T00:00:00Z&per_page=10"
	s.Inject(FaultTooMany, FaultServerError, FaultMalformed, FaultServiceUnavailable)
	resp, _ := get(t, h, "/page/orders"+q)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "1.500" {
		t.Fatalf("429: %d %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if resp, _ := get(t, h, "/page/orders"+q); resp.StatusCode != 500 {
		t.Fatalf("500: %d", resp.StatusCode)
	}
	if resp, body := get(t, h, "/page/orders"+q); resp.StatusCode != 200 || json.Valid([]byte(body)) {
		t.Fatalf("malformed: %d %s", resp.StatusCode, body)
	}
	if resp, _ := get(t, h, "/page/orders"+q); resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "" {
		t.Fatalf("503: %d", resp.StatusCode)
	}
	resp, body := get(t, h, "/page/orders"+q+"&page=10")
	var page struct {
		Data struct{ Items []map[string]any }
		Meta struct{ Page, PerPage, Total, Pages int }
	}
	if err := json.Unmarshal([]byte(body), &page); err != nil || resp.StatusCode != 200 || len(page.Data.Items) != 10 || page.Meta.Total != 100 || page.Meta.Pages != 10 {
		t.Fatalf("page 10: %d %s", resp.StatusCode, body)
	}
	for _, tc := range []struct{ url, want string }{
		{"/page/nope" + q, `no dataset \"nope\"`},
		{"/pages/orders" + q, `no pagination style \"pages\"`},
		{"/page/orders?from=yesterday", "RFC 3339"},
		{"/cursor/orders" + q + "&cursor=zzz", "is not one this API issued"},
		{"/offset/orders" + q + "&skip=-1", "skip"},
	} {
		if resp, body := get(t, h, tc.url); resp.StatusCode/100 != 4 || !strings.Contains(body, tc.want) {
			t.Errorf("%s: %d %s", tc.url, resp.StatusCode, body)
		}
	}
	st := s.Stats()
	if st.Status[429] != 1 || st.Status[500] != 1 || st.Status[503] != 1 || st.Records != 10+10 {
		t.Fatalf("stats %+v", st)
	}
	if got := formatRetryAfter(2 * time.Second); got != "2" {
		t.Fatal(got)
	}
}

package apisource

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestLookupAndElements(t *testing.T) {
	doc := []byte(` { "data" : { "items" : [ {"id": 1, "a b": "x,}]", "n": {"k": [10, {"z": "\"q\""}]}} , {"id":"2"} ] },
		"next": null, "esc\u0061pe": true, "s": "br\"ace}" } `)
	cases := []struct {
		path string
		want string
		ok   bool
	}{
		{"data.items.0.id", "1", true},
		{"data.items.1.id", `"2"`, true},
		{"data.items.0.a b", `"x,}]"`, true},
		{"data.items.0.n.k.1.z", `"\"q\""`, true},
		{"next", "null", true},
		{"escape", "true", true},
		{"s", `"br\"ace}"`, true},
		{"data.missing", "", false},
		{"data.items.5", "", false},
		{"data.items.x", "", false},
		{"s.deeper", "", false},
		{"", string(trimmed(doc)), true},
	}
	for _, tc := range cases {
		got, ok, err := lookup(doc, splitPath(tc.path))
		if err != nil || ok != tc.ok || string(got) != tc.want {
			t.Errorf("lookup(%q) = %q, %v, %v; want %q, %v", tc.path, got, ok, err, tc.want, tc.ok)
		}
	}
	items, _, _ := lookup(doc, splitPath("data.items"))
	el, err := elements(items)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range el {
		got = append(got, string(compact(e)))
	}
	want := []string{`{"id":1,"a b":"x,}]","n":{"k":[10,{"z":"\"q\""}]}}`, `{"id":"2"}`}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("elements (-want +got):\n%s", diff)
	}
	if e, err := elements([]byte(" [ ] ")); err != nil || len(e) != 0 {
		t.Fatalf("empty array %v %v", e, err)
	}
	for _, bad := range []string{`[1,`, `[1 2]`, `["open`, `{"a":1}`} {
		if _, err := elements([]byte(bad)); err == nil {
			t.Errorf("elements(%s) accepted", bad)
		}
	}
	for _, bad := range []string{`{"a" 1}`, `{"b":1 "a":2}`, `{"a":"open`} {
		if _, _, err := lookup([]byte(bad), []string{"a"}); err == nil {
			t.Errorf("lookup(%s) accepted", bad)
		}
	}
}

func trimmed(b []byte) []byte {
	i, j := 0, len(b)
	for i < j && isSpace(b[i]) {
		i++
	}
	for j > i && isSpace(b[j-1]) {
		j--
	}
	return b[i:j]
}

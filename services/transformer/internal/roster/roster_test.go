package roster

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestParse(t *testing.T) {
	want := []Entry{
		{Site: "hq", UserID: "0042", PersonID: "emp-1", Name: "Ada, Countess", Department: "office"},
		{Site: "hq", UserID: "0043", PersonID: "emp-2", Shift: "night"},
		{Site: "plant 2", UserID: "42", PersonID: "emp-3"},
	}
	tests := []struct {
		name, file, data string
	}{
		{"csv", "roster.csv", "\ufeffsite,user_id,person_id,name,department,shift\nhq,0042,emp-1,\"Ada, Countess\",office,\nhq,0043,emp-2,,,night\nplant 2,42,emp-3,,,\n"},
		{"csv columns in any order, optional ones left out", "r.CSV", "person_id,user_id,site,name,department,shift\nemp-1,0042,hq,\"Ada, Countess\",office,\nemp-2,0043,hq,,,night\nemp-3,42,plant 2,,,\n"},
		{"yaml", "roster.yaml", "- {site: hq, user_id: \"0042\", person_id: emp-1, name: \"Ada, Countess\", department: office}\n- {site: hq, user_id: \"0043\", person_id: emp-2, shift: night}\n- {site: plant 2, user_id: \"42\", person_id: emp-3}\n"},
		{"json", "roster.json", `[{"site":"hq","user_id":"0042","person_id":"emp-1","name":"Ada, Countess","department":"office"},{"site":"hq","user_id":"0043","person_id":"emp-2","shift":"night"},{"site":"plant 2","user_id":"42","person_id":"emp-3"}]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Parse(tt.file, []byte(tt.data))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, r.Entries(), cmpopts.IgnoreFields(Entry{}, "Version")); diff != "" {
				t.Errorf("entries (-want +got):\n%s", diff)
			}
			if e, ok := r.Lookup("hq", "0042"); !ok || e.PersonID != "emp-1" || len(e.Version) != 12 {
				t.Errorf("Lookup(hq, 0042) = %+v, %v", e, ok)
			}
			if _, ok := r.Lookup("hq", "42"); ok {
				t.Errorf("user ids are strings: 42 is not 0042")
			}
			if _, ok := r.Lookup("plant 2", "0042"); ok {
				t.Errorf("a user id belongs to one site")
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, file, data, want string
	}{
		{"missing column", "r.csv", "site,user_id\nhq,1\n", `line 1: column "person_id" is missing`},
		{"unknown column", "r.csv", "site,user_id,person_id,salary\n", `line 1: unknown column "salary"`},
		{"empty csv", "r.csv", "", "empty file"},
		{"empty person", "r.csv", "site,user_id,person_id\nhq,1,\nhq,2,p2\nhq,3,\n", "line 2: person_id is required\nline 4: person_id is required"},
		{"duplicate", "r.csv", "site,user_id,person_id\nhq,1,a\nhq,1,b\n", `site "hq" user "1" is listed twice`},
		{"yaml not a list", "r.yaml", "site: hq\n", "line 1: want a list of entries"},
		{"yaml unknown key", "r.yaml", "- {site: hq, user_id: \"1\", person_id: a}\n- {site: hq, user: \"2\", person_id: b}\n", `line 2: unknown key "user"`},
		{"yaml nested value", "r.yaml", "- {site: hq, user_id: [1], person_id: a}\n", "line 1: user_id must be a plain value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.file, []byte(tt.data))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestKV(t *testing.T) {
	tests := []struct{ site, user, key string }{
		{"hq", "0042", "hq.0042"},
		{"plant 2", "A.B/7", "plant=202.A=2EB=2F7"},
		{"zürich", "=", "z=C3=BCrich.=3D"},
		{"hq", "", "hq.="},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			if got := KVKey(tt.site, tt.user); got != tt.key {
				t.Fatalf("KVKey = %q, want %q", got, tt.key)
			}
			site, user, err := ParseKVKey(tt.key)
			if err != nil || site != tt.site || user != tt.user {
				t.Fatalf("ParseKVKey = %q %q %v", site, user, err)
			}
		})
	}
	e := Entry{Site: "plant 2", UserID: "A.B/7", PersonID: "emp-3", Name: "Bo", Department: "ops", Shift: "night"}
	got, err := ParseKVEntry(KVKey(e.Site, e.UserID), KVValue(e))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(e, got, cmpopts.IgnoreFields(Entry{}, "Version")); diff != "" || got.Version == "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	for _, bad := range []struct{ key, value, want string }{
		{"hq", `{"person_id":"a"}`, "not <site>.<user_id>"},
		{"hq.1.2", `{"person_id":"a"}`, "not <site>.<user_id>"},
		{"hq.=4", `{"person_id":"a"}`, "cut short"},
		{"hq.1", `{"person":"a"}`, "unknown field"},
		{"hq.1", `{"name":"a"}`, "person_id is required"},
		{"hq.1", `{"person_id":"a","user_id":"2"}`, "the key says"},
	} {
		if _, err := ParseKVEntry(bad.key, []byte(bad.value)); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("ParseKVEntry(%q, %s) error = %v, want %q", bad.key, bad.value, err, bad.want)
		}
	}
}

func TestVersions(t *testing.T) {
	base := Entry{Site: "hq", UserID: "1", PersonID: "a", Name: "Ann", Department: "d", Shift: "s"}
	v := func(e Entry) string {
		r, err := New([]Entry{e})
		if err != nil {
			t.Fatal(err)
		}
		got, _ := r.Lookup(e.Site, e.UserID)
		return got.Version
	}
	renamed, moved, other := base, base, base
	renamed.Name = "Anne"
	moved.Department = "e"
	other.PersonID, other.Department = "ad", ""
	switch {
	case v(base) != v(base):
		t.Error("version not deterministic")
	case v(base) != v(renamed):
		t.Error("a name change (not in any event) changed the version")
	case v(base) == v(moved):
		t.Error("a department change kept the version")
	case v(Entry{Site: "hq", UserID: "1", PersonID: "a", Department: "d"}) == v(Entry{Site: "hq", UserID: "1", PersonID: "ad"}):
		t.Error("fields shifted across a boundary collide")
	}
	a, _ := New([]Entry{base})
	b, _ := New([]Entry{moved})
	if a.Version == b.Version {
		t.Error("roster version ignores an entry change")
	}
}

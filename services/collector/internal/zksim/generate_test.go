package zksim

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/punchflow/punchflow/services/collector/internal/zk"
)

func TestGenerateDeterministic(t *testing.T) {
	cfg := Config{Seed: 42, Users: 30, Records: 3000}
	a, err := NewDevice(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewDevice(cfg)
	if !reflect.DeepEqual(a.Users(), b.Users()) || !reflect.DeepEqual(a.Attendance(), b.Attendance()) {
		t.Errorf("same seed, different data")
	}
	cfg.Seed = 43
	c, _ := NewDevice(cfg)
	if reflect.DeepEqual(a.Attendance(), c.Attendance()) {
		t.Errorf("different seeds, same log")
	}
}

func TestGenerateRealistic(t *testing.T) {
	d, err := NewDevice(Config{Seed: 7, Users: 25, Records: 5000})
	if err != nil {
		t.Fatal(err)
	}
	users, recs := d.Users(), d.Attendance()
	if len(users) != 25 || len(recs) != 5000 {
		t.Fatalf("%d users, %d records; want 25, 5000", len(users), len(recs))
	}
	ids := map[string]bool{}
	for i, u := range users {
		if u.UID != i+1 || ids[u.UserID] || u.Validate() != nil || len(u.Name) > 8 {
			t.Errorf("user %d = %+v: want uid %d, unique valid id, name ≤ 8 bytes", i, u, i+1)
		}
		ids[u.UserID] = true
	}
	window := map[int][2]time.Duration{
		zk.StateCheckIn:  {8 * time.Hour, 9*time.Hour + 30*time.Minute},
		zk.StateBreakOut: {12 * time.Hour, 13 * time.Hour},
		zk.StateBreakIn:  {12*time.Hour + 30*time.Minute, 14 * time.Hour},
		zk.StateCheckOut: {17 * time.Hour, 18*time.Hour + 30*time.Minute},
	}
	states := map[int]int{}
	for i, r := range recs {
		if err := r.Validate(); err != nil {
			t.Fatalf("record %d invalid: %v", i, err)
		}
		if wd := r.DeviceTime.Weekday(); wd == time.Saturday || wd == time.Sunday {
			t.Fatalf("record %d on a %v", i, wd)
		}
		w, ok := window[r.State]
		since := r.DeviceTime.Sub(r.DeviceTime.Truncate(24 * time.Hour))
		if !ok || since < w[0] || since >= w[1] {
			t.Fatalf("record %d: state %d at %s, outside its window", i, r.State, r.DeviceTime.Format(time.TimeOnly))
		}
		if i > 0 && r.DeviceTime.Before(recs[i-1].DeviceTime) {
			t.Fatalf("record %d is earlier than record %d", i, i-1)
		}
		if !ids[r.UserID] {
			t.Fatalf("record %d by unknown user %q", i, r.UserID)
		}
		got, err := zk.DecodeAttendanceRecord(r.Raw)
		if err != nil || !reflect.DeepEqual(got, r) {
			t.Fatalf("record %d Raw decodes to %+v, %v; want %+v", i, got, err, r)
		}
		states[r.State]++
	}
	if states[zk.StateCheckIn] == 0 || states[zk.StateCheckOut] == 0 || states[zk.StateBreakOut] == 0 {
		t.Errorf("state mix %v lacks check-in, check-out or breaks", states)
	}
	if first := recs[0].DeviceTime; first.Format(time.DateOnly) != "2024-01-01" {
		t.Errorf("first punch on %v, want 2024-01-01", first)
	}
}

func TestGenerateDuplicates(t *testing.T) {
	d, err := NewDevice(Config{Seed: 3, Records: 1000, Faults: Faults{DuplicatePunches: 12}})
	if err != nil {
		t.Fatal(err)
	}
	recs := d.Attendance()
	dups := 0
	for i := 1; i < len(recs); i++ {
		if reflect.DeepEqual(recs[i], recs[i-1]) {
			dups++
		}
	}
	if len(recs) != 1000 || dups < 12 {
		t.Errorf("%d records with %d adjacent duplicates; want 1000 with at least 12", len(recs), dups)
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"record size 20", Config{RecordSize: 20}, "RecordSize"},
		{"user size 40", Config{UserSize: 40}, "UserSize"},
		{"event size 40", Config{EventSize: 40}, "EventSize"},
		{"records over capacity", Config{Records: 11, RecordCapacity: 10}, "Records"},
		{"negative users", Config{Users: -1}, "Users"},
		{"drop rate 1", Config{Faults: Faults{DropRate: 1}}, "DropRate"},
		{"corrupt index out of range", Config{Records: 5, Faults: Faults{CorruptRecords: []int{5}}}, "CorruptRecords"},
		{"log past 2099", Config{Users: 1, Records: 2000, Start: time.Date(2098, 1, 1, 0, 0, 0, 0, time.UTC)}, "2099"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewDevice(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewDevice = %v, want an error naming %q", err, tt.want)
			}
		})
	}
}

package csvsource

import (
	"errors"
	"strconv"
	"strings"
	"testing"
)

func TestParseMapping(t *testing.T) {
	m, err := ParseMapping(" user_id=EmpNo , device_time=Timestamp")
	if err != nil || m[FieldUserID] != "EmpNo" || m[FieldDeviceTime] != "Timestamp" {
		t.Fatalf("ParseMapping = %v, %v", m, err)
	}
	for _, bad := range []string{"user_id", "user=EmpNo", "user_id="} {
		if _, err := ParseMapping(bad); err == nil {
			t.Errorf("ParseMapping(%q) accepted", bad)
		}
	}
}

func TestLayoutAndPunch(t *testing.T) {
	defaults := Defaults{Site: "hq", TimeZone: "Europe/Berlin"}
	header := []string{"\ufeffEmpNo", "Device", "Time", "Status", "Verify"}
	m := Mapping{FieldUserID: "empno", FieldDevice: "Device", FieldDeviceTime: "Time", FieldState: "Status", FieldVerifyMode: "Verify"}
	l, err := NewLayout(header, m, defaults)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		line    string
		want    string // "user|device|site|time|state|verify|zone"
		wantErr string
	}{
		{"full line", "0042,DEV1,2026-11-02 08:15:00,1,15", "0042|DEV1|hq|2026-11-02T08:15:00|1|15|Europe/Berlin", ""},
		{"leading zeros and spaces kept as a string id", " 007 ,DEV1,2026-11-02T08:15:00,,", "007|DEV1|hq|2026-11-02T08:15:00|0|0|Europe/Berlin", ""},
		{"slash dates", "9,DEV1,2026/11/02 08:15:00,0,1", "9|DEV1|hq|2026-11-02T08:15:00|0|1|Europe/Berlin", ""},
		{"empty user", ",DEV1,2026-11-02 08:15:00,0,1", "", "user_id is empty"},
		{"bad time", "1,DEV1,02.11.2026 08:15,0,1", "", "matches none of the layouts"},
		{"state not a number", "1,DEV1,2026-11-02 08:15:00,in,1", "", "state"},
		{"verify out of range", "1,DEV1,2026-11-02 08:15:00,0,300", "", "verify_mode"},
		{"too few fields", "1,DEV1", "", "2 fields, the header has 5"},
		{"broken quotes", `1,"DEV1,2026-11-02 08:15:00,0,1`, "", "not valid CSV"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, err := SplitLine(tt.line)
			if err == nil {
				p, perr := l.Punch(rec, defaults)
				err = perr
				if err == nil {
					got := strings.Join([]string{p.UserID, p.DeviceSerial, p.Site, p.DeviceTime, itoa(p.State), itoa(p.VerifyMode), p.DeviceTimeZone}, "|")
					if got != tt.want {
						t.Fatalf("punch = %s, want %s", got, tt.want)
					}
				}
			}
			if tt.wantErr == "" && err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrBadLine) {
					t.Fatalf("error = %v, want a bad line mentioning %q", err, tt.wantErr)
				}
			}
		})
	}
}

func TestLayoutMissingColumns(t *testing.T) {
	_, err := NewLayout([]string{"user_id", "when"}, Mapping{}, Defaults{})
	if err == nil {
		t.Fatal("accepted a header without device_time, device and site")
	}
	for _, want := range []string{"device_time", "device_serial (or set a default device)", "site (or set a default site)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func itoa(n int) string {
	return strconv.Itoa(n)
}

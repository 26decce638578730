package adms

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseATTLOG(t *testing.T) {
	body := "1\t2026-04-01 08:00:00\t0\t1\t0\t0\t0\r\n" +
		"\n" +
		"00042\t2026-04-01 17:31:07\t1\t15\t7\n" +
		"A-7\t2026-04-01T12:00:00\n" +
		"x\tyesterday\t0\t1\n" +
		"\t2026-04-01 08:00:00\t0\n" +
		"2\t1999-12-31 23:59:59\t0\t1\n" +
		"3\t2026-04-01 08:00:00\tIN\t1\n" +
		"4\t2026-04-01 08:00:00\t0\t300\n" +
		"lonely\n" +
		"5\t2026-04-01 08:00:00\t\t\t\n"
	recs, bad := ParseATTLOG([]byte(body))
	at := func(s string) time.Time { t, _ := time.Parse(time.DateTime, s); return t }
	wantRecs := []AttLog{
		{Line: 1, PIN: "1", Time: at("2026-04-01 08:00:00"), Status: 0, Verify: 1},
		{Line: 3, PIN: "00042", Time: at("2026-04-01 17:31:07"), Status: 1, Verify: 15, WorkCode: 7},
		{Line: 4, PIN: "A-7", Time: at("2026-04-01 12:00:00")},
		{Line: 11, PIN: "5", Time: at("2026-04-01 08:00:00")},
	}
	if diff := cmp.Diff(wantRecs, recs); diff != "" {
		t.Fatalf("records (-want +got):\n%s", diff)
	}
	wantBad := []BadLine{
		{Line: 5, Raw: "x\tyesterday\t0\t1", Reason: `time "yesterday" is not YYYY-MM-DD hh:mm:ss`},
		{Line: 6, Raw: "\t2026-04-01 08:00:00\t0", Reason: "PIN is empty"},
		{Line: 7, Raw: "2\t1999-12-31 23:59:59\t0\t1", Reason: "time 1999-12-31 23:59:59 is outside 2000–2099 (a reset clock)"},
		{Line: 8, Raw: "3\t2026-04-01 08:00:00\tIN\t1", Reason: `status "IN" is not a number from 0 to 255`},
		{Line: 9, Raw: "4\t2026-04-01 08:00:00\t0\t300", Reason: `verify "300" is not a number from 0 to 255`},
		{Line: 10, Raw: "lonely", Reason: "want tab-separated PIN and time (and status, verify, work code), got 1 field"},
	}
	if diff := cmp.Diff(wantBad, bad); diff != "" {
		t.Fatalf("bad lines (-want +got):\n%s", diff)
	}
}

func TestParseResults(t *testing.T) {
	body := "ID=1&Return=0&CMD=INFO\n~DeviceName=SpeedFace-V5L\nFWVersion=ZAM180-NF-Ver1.1.17\nUserCount=2\n" +
		"ID=2&Return=0&CMD=CHECK\r\n" +
		"ID=32\nReturn=0\nCMD=Shell\nContent=Tue Mar 24 16:12:26 GMT 2026\n" +
		"ID=x&Return=0\n" +
		"garbage\n"
	got, unknown := ParseResults([]byte(body))
	want := []Result{
		{ID: 1, Command: "INFO", Return: 0, Content: "DeviceName=SpeedFace-V5L\nFWVersion=ZAM180-NF-Ver1.1.17\nUserCount=2",
			Info: map[string]string{"DeviceName": "SpeedFace-V5L", "FWVersion": "ZAM180-NF-Ver1.1.17", "UserCount": "2"}},
		{ID: 2, Command: "CHECK", Return: 0, Info: map[string]string{}},
		{ID: 32, Command: "Shell", Return: 0, Content: "Tue Mar 24 16:12:26 GMT 2026", Info: map[string]string{}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("results (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"ID=x&Return=0", "garbage"}, unknown); diff != "" {
		t.Fatalf("unknown (-want +got):\n%s", diff)
	}
}

func TestParseInfo(t *testing.T) {
	got := ParseInfo([]byte("~DeviceName=MB460,MAC=00:17:61:12:f8:db\nTransactionCount=12\r\n,junk\n"))
	want := map[string]string{"DeviceName": "MB460", "MAC": "00:17:61:12:f8:db", "TransactionCount": "12"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("info (-want +got):\n%s", diff)
	}
	got = ParseInfoParam("Ver 8.0.4.7-20220607,5,6,10,192.168.1.201,10,7,12,1,11")
	if got["FWVersion"] != "Ver 8.0.4.7-20220607" || got["UserCount"] != "5" || got["TransactionCount"] != "10" || got["IPAddress"] != "192.168.1.201" {
		t.Fatalf("info param %v", got)
	}
}

func TestStateQueue(t *testing.T) {
	now := time.Date(2026, 4, 1, 8, 0, 0, 0, time.UTC)
	st := State{Pending: []Command{{ID: 1, Command: "INFO"}, {ID: 2, Command: "CHECK"}}}
	if due := st.due(now, time.Minute, 3); len(due) != 2 || due[0].Sends != 1 {
		t.Fatalf("first poll %+v", due)
	}
	if due := st.due(now.Add(30*time.Second), time.Minute, 3); len(due) != 0 {
		t.Fatalf("resent too early: %+v", due)
	}
	if !st.confirm(Result{ID: 1, Return: 0, Command: "INFO"}, now) || st.confirm(Result{ID: 1}, now) {
		t.Fatal("confirm")
	}
	// CHECK is never confirmed: sent three times, then expired.
	st.due(now.Add(2*time.Minute), time.Minute, 3)
	st.due(now.Add(4*time.Minute), time.Minute, 3)
	if due := st.due(now.Add(6*time.Minute), time.Minute, 3); len(due) != 0 || len(st.Pending) != 0 {
		t.Fatalf("not expired: %+v %+v", due, st.Pending)
	}
	if last := st.Results[len(st.Results)-1]; !last.Expired || last.ID != 2 {
		t.Fatalf("results %+v", st.Results)
	}
	if !newerStamp("", "5") || !newerStamp("9", "10") || newerStamp("10", "9") || newerStamp("7", "7") || !newerStamp("a", "b") {
		t.Fatal("newerStamp")
	}
}

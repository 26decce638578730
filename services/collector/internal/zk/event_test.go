package zk

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"testing"
)

func TestDecodeEvents(t *testing.T) {
	tm := []byte{0x12, 0x06, 0x19, 0x11, 0x29, 0x05} // 2018-06-25 17:41:05
	at := date(2018, 6, 25, 17, 41, 5)
	id24 := func(s string) []byte { b := make([]byte, 24); copy(b, s); return b }
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	tests := []struct {
		name string
		data []byte
		want []Event
	}{
		{"10: u16 user id", cat([]byte{0xe9, 0x03, 1, 0}, tm),
			[]Event{{UserID: "1001", VerifyMode: 1, State: 0}}},
		{"12: u32 user id", cat([]byte{0xa0, 0x86, 0x01, 0x00, 15, 1}, tm),
			[]Event{{UserID: "100000", VerifyMode: 15, State: 1}}},
		{"14: u16 user id + 4 extra", cat([]byte{0x07, 0x00, 4, 2}, tm, []byte{9, 9, 9, 9}),
			[]Event{{UserID: "7", VerifyMode: 4, State: 2}}},
		{"32: text user id", cat(id24("E-1042"), []byte{15, 3}, tm),
			[]Event{{UserID: "E-1042", VerifyMode: 15, State: 3}}},
		{"36: 32 + 4 extra", cat(id24("1001"), []byte{1, 4}, tm, make([]byte, 4)),
			[]Event{{UserID: "1001", VerifyMode: 1, State: 4}}},
		{"37: 32 + 5 extra", cat(id24("1001"), []byte{1, 5}, tm, make([]byte, 5)),
			[]Event{{UserID: "1001", VerifyMode: 1, State: 5}}},
		{"52: 32 + 20 extra", cat(id24("1001"), []byte{1, 255}, tm, make([]byte, 20)),
			[]Event{{UserID: "1001", VerifyMode: 1, State: 255}}},
		{"53: trailing byte is padding", cat(id24("1001"), []byte{1, 0}, tm, make([]byte, 21)),
			[]Event{{UserID: "1001", VerifyMode: 1}}},
		{"62: 52 then a 10-byte event", cat(id24("1001"), []byte{1, 0}, tm, make([]byte, 20), []byte{0x08, 0x00, 1, 1}, tm),
			[]Event{{UserID: "1001", VerifyMode: 1}, {UserID: "8", VerifyMode: 1, State: 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, bad, err := DecodeEvents(EventAttLog, tt.data)
			if err != nil || len(bad) != 0 {
				t.Fatalf("DecodeEvents: %v, bad %v", err, bad)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d events, want %d", len(got), len(tt.want))
			}
			for i := range got {
				w := tt.want[i]
				w.Flag, w.Time, w.Raw = EventAttLog, at, got[i].Raw
				if !reflect.DeepEqual(got[i], w) {
					t.Errorf("event %d = %+v, want %+v", i, got[i], w)
				}
			}
			if len(tt.want) == 1 && len(tt.data) <= 52 && !bytes.Equal(got[0].Raw, tt.data) {
				t.Errorf("Raw = % x, want % x", got[0].Raw, tt.data)
			}
		})
	}
}

func TestDecodeEventsErrors(t *testing.T) {
	tm := []byte{0x12, 0x06, 0x19, 0x11, 0x29, 0x05}
	tests := []struct {
		name    string
		data    []byte
		wantErr bool // a packet-level ErrLayout
		wantBad int  // events reported as *RecordError
	}{
		{"empty", nil, true, 0},
		{"8 bytes", make([]byte, 8), true, 0},
		{"40 bytes (pyzk would spin)", make([]byte, 40), true, 0},
		{"20 bytes", make([]byte, 20), true, 0},
		{"bad time", append([]byte{0xe9, 0x03, 1, 0}, 18, 13, 1, 0, 0, 0), false, 1},
		{"user id 0", append([]byte{0, 0, 1, 0}, tm...), false, 1},
		{"zero text id", make([]byte, 32), false, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, bad, err := DecodeEvents(EventAttLog, tt.data)
			if (err != nil) != tt.wantErr || len(bad) != tt.wantBad || len(evs) != 0 {
				t.Fatalf("DecodeEvents = %v, bad %v, err %v; want error %v, %d bad", evs, bad, err, tt.wantErr, tt.wantBad)
			}
			if err != nil && !errors.Is(err, ErrLayout) {
				t.Errorf("err = %v, want ErrLayout", err)
			}
			for _, b := range bad {
				if !bytes.Equal(b.Raw, tt.data) {
					t.Errorf("bad Raw = % x, want % x", b.Raw, tt.data)
				}
			}
		})
	}
}

func TestDecodeEventsOtherFlags(t *testing.T) {
	data := []byte{1, 2, 3}
	evs, bad, err := DecodeEvents(EventFinger, data)
	if err != nil || len(bad) != 0 || len(evs) != 1 {
		t.Fatalf("DecodeEvents = %v, %v, %v", evs, bad, err)
	}
	if evs[0].Flag != EventFinger || !bytes.Equal(evs[0].Raw, data) || evs[0].UserID != "" {
		t.Errorf("event = %+v, want only flag and raw", evs[0])
	}
}

func TestAppendEventRoundTrip(t *testing.T) {
	at := date(2024, 5, 6, 7, 8, 9)
	for _, size := range EventSizes {
		for _, id := range []string{"1", "1001", "65535"} {
			t.Run(fmt.Sprintf("%d/%s", size, id), func(t *testing.T) {
				ev := Event{Flag: EventAttLog, UserID: id, State: 1, VerifyMode: 15, Time: at}
				data, err := AppendEvent(nil, ev, size)
				if err != nil {
					t.Fatalf("AppendEvent: %v", err)
				}
				if len(data) != size {
					t.Fatalf("len = %d, want %d", len(data), size)
				}
				got, bad, err := DecodeEvents(EventAttLog, data)
				if err != nil || len(bad) != 0 || len(got) != 1 {
					t.Fatalf("DecodeEvents = %v, %v, %v", got, bad, err)
				}
				ev.Raw = data
				if !reflect.DeepEqual(got[0], ev) {
					t.Errorf("got %+v, want %+v", got[0], ev)
				}
			})
		}
	}
}

func TestAppendEventErrors(t *testing.T) {
	at := date(2024, 5, 6, 7, 8, 9)
	tests := []struct {
		name string
		size int
		ev   Event
	}{
		{"size 40", 40, Event{UserID: "1", Time: at}},
		{"size 53", 53, Event{UserID: "1", Time: at}},
		{"10 user id above 65535", 10, Event{UserID: "65536", Time: at}},
		{"12 text user id", 12, Event{UserID: "E1", Time: at}},
		{"32 long user id", 32, Event{UserID: "1234567890123456789012345", Time: at}},
		{"year 2100", 32, Event{UserID: "1", Time: date(2100, 1, 1, 0, 0, 0)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := AppendEvent(nil, tt.ev, tt.size); err == nil || len(got) != 0 {
				t.Errorf("AppendEvent = % x, %v; want an error and nothing appended", got, err)
			}
		})
	}
}

func TestEventRecord(t *testing.T) {
	ev := Event{Flag: EventAttLog, UserID: "1001", State: 1, VerifyMode: 15, Time: date(2024, 1, 1, 9, 0, 0), Raw: []byte{1}}
	want := AttendanceRecord{UserID: "1001", State: 1, VerifyMode: 15, DeviceTime: ev.Time, Raw: ev.Raw}
	if got := ev.Record(); !reflect.DeepEqual(got, want) {
		t.Errorf("Record = %+v, want %+v", got, want)
	}
}

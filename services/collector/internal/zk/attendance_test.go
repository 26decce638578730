package zk

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
	"time"
)

// rec40 builds a 40-byte record by hand, independently of AppendAttendance.
func rec40(uid uint16, userID string, verify byte, packed uint32, state byte) []byte {
	b := make([]byte, 40)
	b[0], b[1] = byte(uid), byte(uid>>8)
	copy(b[2:26], userID)
	b[26] = verify
	b[27], b[28], b[29], b[30] = byte(packed), byte(packed>>8), byte(packed>>16), byte(packed>>24)
	b[31] = state
	b[36] = 0xFF
	return b
}

func TestDecodeAttendanceRecord(t *testing.T) {
	docExample := "01 00 31 30 30 30 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 01 80 35 0d 2e 00 00 00 00 00 ff 00 00 00"
	tests := []struct {
		name string
		raw  []byte
		want AttendanceRecord
	}{
		{
			name: "40-byte example of the notes",
			raw:  unhex(t, docExample),
			want: AttendanceRecord{UID: 1, UserID: "1000", DeviceTime: date(2024, 1, 15, 8, 0, 0), State: 0, VerifyMode: 1},
		},
		{
			name: "40-byte adrobinoga capture",
			raw:  rec40(0x0D, "999111333", 1, 0x2368B36B, 1),
			want: AttendanceRecord{UID: 13, UserID: "999111333", DeviceTime: date(2018, 6, 25, 17, 50, 35), State: 1, VerifyMode: 1},
		},
		{
			name: "40-byte full-width user id and work code",
			raw: func() []byte {
				b := rec40(2, "ABCDEFGHIJKLMNOPQRSTUVWX", 15, 772617600, 255)
				b[32] = 7
				return b
			}(),
			want: AttendanceRecord{UID: 2, UserID: "ABCDEFGHIJKLMNOPQRSTUVWX", DeviceTime: date(2024, 1, 15, 8, 0, 0), State: 255, VerifyMode: 15, WorkCode: 7},
		},
		{
			name: "40-byte garbage after the user id terminator",
			raw:  rec40(3, "42\x00junk", 1, 772617600, 4),
			want: AttendanceRecord{UID: 3, UserID: "42", DeviceTime: date(2024, 1, 15, 8, 0, 0), State: 4, VerifyMode: 1},
		},
		{
			name: "49-byte record decodes its 40-byte prefix",
			raw:  append(rec40(1, "1000", 1, 772617600, 5), make([]byte, 9)...),
			want: AttendanceRecord{UID: 1, UserID: "1000", DeviceTime: date(2024, 1, 15, 8, 0, 0), State: 5, VerifyMode: 1},
		},
		{
			name: "16-byte record",
			raw:  unhex(t, "e9030000 80350d2e 0f 01 0000 03000000"),
			want: AttendanceRecord{UserID: "1001", DeviceTime: date(2024, 1, 15, 8, 0, 0), State: 1, VerifyMode: 15, WorkCode: 3},
		},
		{
			name: "8-byte record of pyzk #99",
			raw:  unhex(t, "07 00 28 00 a8 eb a7 1e"),
			want: AttendanceRecord{UID: 7, UserID: "7", DeviceTime: date(2016, 1, 1, 19, 2, 0), State: 2, VerifyMode: 8},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeAttendanceRecord(tt.raw)
			if err != nil {
				t.Fatalf("DecodeAttendanceRecord: %v", err)
			}
			tt.want.Raw = tt.raw
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestDecodeAttendanceRecordInvalid(t *testing.T) {
	good := rec40(1, "1000", 1, 772617600, 0)
	mod := func(f func(b []byte)) []byte {
		b := bytes.Clone(good)
		f(b)
		return b
	}
	tests := []struct {
		name    string
		raw     []byte
		wantErr error // besides the failure itself
	}{
		{"zero timestamp", rec40(1, "1000", 1, 0, 0), ErrInvalidTime},
		{"year 2133", rec40(1, "1000", 1, 0xFFFFFFFF, 0), ErrInvalidTime},
		{"30 February", rec40(1, "1000", 1, ((24*12+1)*31+29)*86400, 0), ErrInvalidTime},
		{"empty user id", rec40(1, "", 1, 772617600, 0), nil},
		{"control byte in user id", rec40(1, "10\x0100", 1, 772617600, 0), nil},
		{"space in user id", rec40(1, "10 00", 1, 772617600, 0), nil},
		{"non-ASCII user id", rec40(1, "10\xe900", 1, 772617600, 0), nil},
		{"state 6", rec40(1, "1000", 1, 772617600, 6), nil},
		{"state 254", rec40(1, "1000", 1, 772617600, 254), nil},
		{"verify 200", rec40(1, "1000", 200, 772617600, 0), nil},
		{"16-byte user id 0", unhex(t, "00000000 80350d2e 01 00 0000 00000000"), nil},
		{"8-byte uid 0", unhex(t, "00 00 01 00 80 35 0d 2e"), nil},
		{"all 0xFF", bytes.Repeat([]byte{0xFF}, 40), nil},
		{"all zero", make([]byte, 40), nil},
		{"user id fills the field, no terminator, with junk", mod(func(b []byte) { copy(b[2:26], bytes.Repeat([]byte{0x80}, 24)) }), nil},
		{"unknown size 20", make([]byte, 20), ErrLayout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeAttendanceRecord(tt.raw)
			if err == nil {
				t.Fatalf("DecodeAttendanceRecord = %+v, want an error", got)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestDecodeAttendanceIsolatesBadRecords(t *testing.T) {
	good1 := rec40(1, "1000", 1, 772617600, 0)
	badTime := rec40(2, "1001", 1, 0xFFFFFFFF, 0)
	good2 := rec40(3, "1002", 1, 772617601, 1)
	badID := rec40(4, "", 1, 772617602, 1)
	tail := []byte{1, 2, 3, 4, 5}
	data := bytes.Join([][]byte{good1, badTime, good2, badID, tail}, nil)

	recs, bad, err := DecodeAttendance(data, 40)
	if err != nil {
		t.Fatalf("DecodeAttendance: %v", err)
	}
	if len(recs) != 2 || recs[0].UserID != "1000" || recs[1].UserID != "1002" {
		t.Errorf("records = %+v, want users 1000 and 1002", recs)
	}
	wantBad := []struct {
		index int
		raw   []byte
		cause error
	}{{1, badTime, ErrInvalidTime}, {3, badID, nil}, {4, tail, nil}}
	if len(bad) != len(wantBad) {
		t.Fatalf("bad = %v, want %d", bad, len(wantBad))
	}
	for i, w := range wantBad {
		t.Run(bad[i].Reason, func(t *testing.T) {
			if bad[i].Index != w.index || !bytes.Equal(bad[i].Raw, w.raw) {
				t.Errorf("bad[%d] = index %d raw % x, want %d % x", i, bad[i].Index, bad[i].Raw, w.index, w.raw)
			}
			if !errors.Is(bad[i], ErrBadRecord) {
				t.Errorf("bad[%d] does not match ErrBadRecord", i)
			}
			if w.cause != nil && !errors.Is(bad[i], w.cause) {
				t.Errorf("bad[%d] = %v, want cause %v", i, bad[i], w.cause)
			}
		})
	}
	data[27] = 0 // raw bytes are copies: mutating the input changes nothing
	if bad[0].Raw[1] != 0 || recs[0].Raw[27] != good1[27] {
		t.Errorf("Raw aliases the input")
	}
}

func TestDecodeAttendanceLayout(t *testing.T) {
	tests := []struct {
		name    string
		size    int
		wantErr bool
	}{
		{"8", 8, false}, {"16", 16, false}, {"40", 40, false}, {"49", 49, false},
		{"0", 0, true}, {"12", 12, true}, {"28", 28, true}, {"39", 39, true}, {"negative", -8, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := DecodeAttendance(make([]byte, 80), tt.size)
			if gotErr := err != nil; gotErr != tt.wantErr {
				t.Errorf("err = %v, want error %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrLayout) {
				t.Errorf("err = %v, want ErrLayout", err)
			}
		})
	}
}

func TestAttendanceRecordSize(t *testing.T) {
	tests := []struct {
		name    string
		total   int
		count   int
		want    int
		wantErr bool
	}{
		{"empty", 0, 0, 0, false},
		{"empty with count", 0, 5, 0, false},
		{"40", 4000, 100, 40, false},
		{"16", 1600, 100, 16, false},
		{"8", 800, 100, 8, false},
		{"49", 4900, 100, 49, false},
		{"punch after count", 4040, 100, 40, false},
		{"junk tail", 4003, 100, 40, false},
		{"bytes without count", 40, 0, 0, true},
		{"size 20", 2000, 100, 0, true},
		{"size 4", 400, 100, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := AttendanceRecordSize(tt.total, tt.count)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("AttendanceRecordSize(%d, %d) = %d, %v; want %d (error %v)", tt.total, tt.count, got, err, tt.want, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrLayout) {
				t.Errorf("err = %v, want ErrLayout", err)
			}
		})
	}
}

func TestAppendAttendanceRoundTrip(t *testing.T) {
	at := date(2024, 3, 4, 17, 45, 9)
	tests := []struct {
		name string
		size int
		r    AttendanceRecord
	}{
		{"40", 40, AttendanceRecord{UID: 12, UserID: "E-1042", DeviceTime: at, State: 1, VerifyMode: 15, WorkCode: 9}},
		{"40 state none", 40, AttendanceRecord{UID: 1, UserID: "1", DeviceTime: at, State: StateNone, VerifyMode: 15}},
		{"49", 49, AttendanceRecord{UID: 65535, UserID: "999111333", DeviceTime: at, State: 5, VerifyMode: 1}},
		{"16", 16, AttendanceRecord{UserID: "4294967295", DeviceTime: at, State: 3, VerifyMode: 4, WorkCode: 2}},
		{"8", 8, AttendanceRecord{UID: 7, UserID: "7", DeviceTime: at, State: 2, VerifyMode: 8}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := AppendAttendance([]byte("prefix"), tt.r, tt.size)
			if err != nil {
				t.Fatalf("AppendAttendance: %v", err)
			}
			if string(raw[:6]) != "prefix" || len(raw) != 6+tt.size {
				t.Fatalf("AppendAttendance did not append %d bytes: % x", tt.size, raw)
			}
			got, err := DecodeAttendanceRecord(raw[6:])
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			tt.r.Raw = raw[6:]
			if !reflect.DeepEqual(got, tt.r) {
				t.Errorf("got  %+v\nwant %+v", got, tt.r)
			}
		})
	}
}

func TestAppendAttendanceMatchesNotesExample(t *testing.T) {
	r := AttendanceRecord{UID: 1, UserID: "1000", DeviceTime: date(2024, 1, 15, 8, 0, 0), VerifyMode: 1}
	got, err := AppendAttendance(nil, r, 40)
	want := unhex(t, "01 00 31 30 30 30 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 01 80 35 0d 2e 00 00 00 00 00 ff 00 00 00")
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("AppendAttendance = % x, %v\nwant               % x", got, err, want)
	}
}

func TestAppendAttendanceErrors(t *testing.T) {
	at := date(2024, 3, 4, 17, 45, 9)
	tests := []struct {
		name string
		size int
		r    AttendanceRecord
	}{
		{"unknown size", 20, AttendanceRecord{UID: 1, UserID: "1", DeviceTime: at}},
		{"year 1999", 40, AttendanceRecord{UID: 1, UserID: "1", DeviceTime: date(1999, 1, 1, 0, 0, 0)}},
		{"uid too large", 40, AttendanceRecord{UID: 70000, UserID: "1", DeviceTime: at}},
		{"user id too long", 40, AttendanceRecord{UID: 1, UserID: "1234567890123456789012345", DeviceTime: at}},
		{"state too large", 40, AttendanceRecord{UID: 1, UserID: "1", DeviceTime: at, State: 256}},
		{"16 non-numeric user id", 16, AttendanceRecord{UserID: "E1", DeviceTime: at}},
		{"16 leading zero user id", 16, AttendanceRecord{UserID: "0042", DeviceTime: at}},
		{"8 work code", 8, AttendanceRecord{UID: 1, UserID: "1", DeviceTime: at, WorkCode: 1}},
		{"8 state 16", 8, AttendanceRecord{UID: 1, UserID: "1", DeviceTime: at, State: 16}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := AppendAttendance([]byte{9}, tt.r, tt.size)
			if err == nil {
				t.Fatalf("AppendAttendance = % x, want an error", got)
			}
			if !bytes.Equal(got, []byte{9}) {
				t.Errorf("failed AppendAttendance left dst = % x, want it unchanged", got)
			}
		})
	}
}

func TestResolveUsers(t *testing.T) {
	at := date(2024, 3, 4, 8, 0, 0)
	users := []User{{UID: 7, UserID: "E-7"}, {UID: 8, UserID: "1001"}}
	recs := []AttendanceRecord{
		{UID: 7, UserID: "7", DeviceTime: at, Raw: make([]byte, 8)},
		{UID: 9, UserID: "9", DeviceTime: at, Raw: make([]byte, 8)},
		{UID: 0, UserID: "1001", DeviceTime: at, Raw: make([]byte, 16)},
		{UID: 0, UserID: "2002", DeviceTime: at, Raw: make([]byte, 16)},
		{UID: 5, UserID: "x", DeviceTime: at, Raw: make([]byte, 40)},
	}
	ResolveUsers(recs, users)
	want := []struct {
		uid int
		id  string
	}{{7, "E-7"}, {9, "9"}, {8, "1001"}, {0, "2002"}, {5, "x"}}
	for i, w := range want {
		if recs[i].UID != w.uid || recs[i].UserID != w.id {
			t.Errorf("record %d = uid %d id %q, want %d %q", i, recs[i].UID, recs[i].UserID, w.uid, w.id)
		}
	}
}

func TestAttendanceRecordValidate(t *testing.T) {
	ok := AttendanceRecord{UID: 1, UserID: "1", DeviceTime: date(2024, 1, 1, 0, 0, 0)}
	tests := []struct {
		name  string
		edit  func(*AttendanceRecord)
		valid bool
	}{
		{"valid", func(*AttendanceRecord) {}, true},
		{"zero time", func(r *AttendanceRecord) { r.DeviceTime = time.Time{} }, false},
		{"year 2100", func(r *AttendanceRecord) { r.DeviceTime = date(2100, 1, 1, 0, 0, 0) }, false},
		{"negative state", func(r *AttendanceRecord) { r.State = -1 }, false},
		{"verify 31", func(r *AttendanceRecord) { r.VerifyMode = MaxVerifyMode }, true},
		{"verify 32", func(r *AttendanceRecord) { r.VerifyMode = MaxVerifyMode + 1 }, false},
		{"uid 65536", func(r *AttendanceRecord) { r.UID = 65536 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ok
			tt.edit(&r)
			if err := r.Validate(); (err == nil) != tt.valid {
				t.Errorf("Validate = %v, want valid %v", err, tt.valid)
			}
		})
	}
}

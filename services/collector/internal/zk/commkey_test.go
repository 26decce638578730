package zk

import "testing"

func TestMakeCommKey(t *testing.T) {
	tests := []struct {
		name    string
		key     uint32
		session uint16
		want    [4]byte
	}{
		{"key 0 session 0x1235", 0, 0x1235, [4]byte{0x61, 0x7d, 0x32, 0x6b}},
		{"key 123456 session 0x1235", 123456, 0x1235, [4]byte{0x26, 0x7f, 0x32, 0xeb}},
		{"key 1 session 1", 1, 1, [4]byte{0x61, 0xfd, 0x32, 0x79}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := MakeCommKey(tt.key, tt.session, DefaultTicks)
			if got != tt.want {
				t.Errorf("MakeCommKey = % x, want % x", got, tt.want)
			}
			if !CheckCommKey(got[:], tt.key, tt.session) {
				t.Errorf("CheckCommKey rejects its own key")
			}
		})
	}
}

func TestCheckCommKey(t *testing.T) {
	good := MakeCommKey(123456, 0x1235, DefaultTicks)
	otherTicks := MakeCommKey(123456, 0x1235, 7)
	tests := []struct {
		name    string
		auth    []byte
		key     uint32
		session uint16
		want    bool
	}{
		{"right", good[:], 123456, 0x1235, true},
		{"other ticks accepted", otherTicks[:], 123456, 0x1235, true},
		{"wrong key", good[:], 123457, 0x1235, false},
		{"wrong session", good[:], 123456, 0x1335, false},
		// Byte 2 of the output replaces the low byte of key+session, so
		// sessions differing only there yield the same payload.
		{"low session byte is not carried", good[:], 123456, 0x1236, true},
		{"short", good[:3], 123456, 0x1235, false},
		{"empty", nil, 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CheckCommKey(tt.auth, tt.key, tt.session); got != tt.want {
				t.Errorf("CheckCommKey = %v, want %v", got, tt.want)
			}
		})
	}
}

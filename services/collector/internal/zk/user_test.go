package zk

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"testing"
)

// user72 packs a user the way pyzk's "<HB8s24sIx7sx24s>" reads it, with the
// group byte at offset 39 as adrobinoga documents.
func user72(uid uint16, priv byte, password, name string, card uint32, group byte, userID string) []byte {
	b := make([]byte, 72)
	binary.LittleEndian.PutUint16(b, uid)
	b[2] = priv
	copy(b[3:11], password)
	copy(b[11:35], name)
	binary.LittleEndian.PutUint32(b[35:], card)
	b[39] = group
	copy(b[48:72], userID)
	return b
}

// user28 packs a user the way pyzk's "<HB5s8sIxBhI>" reads it.
func user28(uid uint16, priv byte, password, name string, card uint32, group byte, userID uint32) []byte {
	b := make([]byte, 28)
	binary.LittleEndian.PutUint16(b, uid)
	b[2] = priv
	copy(b[3:8], password)
	copy(b[8:16], name)
	binary.LittleEndian.PutUint32(b[16:], card)
	b[21] = group
	binary.LittleEndian.PutUint32(b[24:], userID)
	return b
}

func TestDecodeUser(t *testing.T) {
	tests := []struct {
		name string
		raw  []byte
		want User
	}{
		{"72-byte admin", user72(1, 14, "1234", "Ana K.", 4242, 1, "1001"),
			User{UID: 1, UserID: "1001", Name: "Ana K.", Privilege: 14, Password: "1234", Card: 4242, Group: 1}},
		{"72-byte text id, UTF-8 name, full password", user72(300, 0, "12345678", "Zoë Ågren", 0, 0, "E-1042"),
			User{UID: 300, UserID: "E-1042", Name: "Zoë Ågren", Password: "12345678"}},
		{"72-byte disabled enroller", user72(2, 3, "", "Gus", 0, 2, "1002"),
			User{UID: 2, UserID: "1002", Name: "Gus", Privilege: 3, Group: 2}},
		{"73-byte record decodes its 72-byte prefix", append(user72(5, 0, "", "Mia", 0, 1, "5"), 0),
			User{UID: 5, UserID: "5", Name: "Mia", Group: 1}},
		{"28-byte", user28(3, 0, "12345", "Hana T.", 99, 1, 1003),
			User{UID: 3, UserID: "1003", Name: "Hana T.", Password: "12345", Card: 99, Group: 1}},
		{"28-byte full name", user28(4, 6, "", "Fatma K.", 0, 1, 4294967295),
			User{UID: 4, UserID: "4294967295", Name: "Fatma K.", Privilege: 6, Group: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeUser(tt.raw)
			if err != nil {
				t.Fatalf("DecodeUser: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestUserPrivilege(t *testing.T) {
	tests := []struct {
		name     string
		priv     int
		disabled bool
		level    int
	}{
		{"user", 0, false, PrivilegeUser},
		{"disabled user", 1, true, PrivilegeUser},
		{"enroller", 2, false, PrivilegeEnroller},
		{"disabled admin", 15, true, PrivilegeAdmin},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := User{Privilege: tt.priv}
			if u.Disabled() != tt.disabled || u.Level() != tt.level {
				t.Errorf("Disabled, Level = %v, %d; want %v, %d", u.Disabled(), u.Level(), tt.disabled, tt.level)
			}
		})
	}
}

func TestDecodeUsersIsolatesBadRecords(t *testing.T) {
	data := bytes.Join([][]byte{
		user72(1, 0, "", "A", 0, 1, "1"),
		user72(2, 0, "", "B", 0, 1, ""),
		user72(3, 0, "", "C", 0, 1, "3\x7f"),
		user72(4, 0, "", "D", 0, 1, "4"),
		{1, 2, 3},
	}, nil)
	users, bad, err := DecodeUsers(data, 72)
	if err != nil {
		t.Fatalf("DecodeUsers: %v", err)
	}
	if len(users) != 2 || users[0].UserID != "1" || users[1].UserID != "4" {
		t.Errorf("users = %+v, want 1 and 4", users)
	}
	var idx []int
	for _, b := range bad {
		idx = append(idx, b.Index)
	}
	if !reflect.DeepEqual(idx, []int{1, 2, 4}) {
		t.Errorf("bad indices = %v, want [1 2 4]", idx)
	}
	if bad[0].Raw == nil || len(bad[0].Raw) != 72 || len(bad[2].Raw) != 3 {
		t.Errorf("bad raw lengths = %d, %d; want 72, 3", len(bad[0].Raw), len(bad[2].Raw))
	}
}

func TestUserRecordSize(t *testing.T) {
	tests := []struct {
		name    string
		total   int
		count   int
		want    int
		wantErr bool
	}{
		{"empty", 0, 0, 0, false},
		{"72", 720, 10, 72, false},
		{"28", 280, 10, 28, false},
		{"73", 730, 10, 73, false},
		{"40", 400, 10, 0, true},
		{"no count", 72, 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := UserRecordSize(tt.total, tt.count)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("UserRecordSize(%d, %d) = %d, %v; want %d (error %v)", tt.total, tt.count, got, err, tt.want, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrLayout) {
				t.Errorf("err = %v, want ErrLayout", err)
			}
			if _, _, err := DecodeUsers(make([]byte, 2*max(tt.want, 72)), tt.want); tt.want != 0 && err != nil {
				t.Errorf("DecodeUsers rejects size %d: %v", tt.want, err)
			}
		})
	}
}

func TestAppendUserRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		size int
		u    User
		raw  []byte
	}{
		{"72", 72, User{UID: 1, UserID: "1001", Name: "Ana K.", Privilege: 14, Password: "1234", Card: 4242, Group: 1},
			user72(1, 14, "1234", "Ana K.", 4242, 1, "1001")},
		{"72 text id", 72, User{UID: 65535, UserID: "ABCDEFGHIJKLMNOPQRSTUVWX", Name: "123456789012345678901234", Password: "12345678"},
			user72(65535, 0, "12345678", "123456789012345678901234", 0, 0, "ABCDEFGHIJKLMNOPQRSTUVWX")},
		{"28", 28, User{UID: 3, UserID: "1003", Name: "Hana T.", Password: "12345", Card: 99, Group: 1},
			user28(3, 0, "12345", "Hana T.", 99, 1, 1003)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := AppendUser(nil, tt.u, tt.size)
			if err != nil {
				t.Fatalf("AppendUser: %v", err)
			}
			if !bytes.Equal(raw, tt.raw) {
				t.Errorf("AppendUser = % x\nwant        % x", raw, tt.raw)
			}
			got, err := DecodeUser(raw)
			if err != nil || !reflect.DeepEqual(got, tt.u) {
				t.Errorf("DecodeUser = %+v, %v; want %+v", got, err, tt.u)
			}
		})
	}
}

func TestAppendUserErrors(t *testing.T) {
	tests := []struct {
		name string
		size int
		u    User
	}{
		{"size 40", 40, User{UID: 1, UserID: "1"}},
		{"28 text id", 28, User{UID: 1, UserID: "E1"}},
		{"28 long name", 28, User{UID: 1, UserID: "1", Name: "Fatma Kaya"}},
		{"28 long password", 28, User{UID: 1, UserID: "1", Password: "123456"}},
		{"72 long user id", 72, User{UID: 1, UserID: "1234567890123456789012345"}},
		{"72 long name", 72, User{UID: 1, UserID: "1", Name: "1234567890123456789012345"}},
		{"72 long password", 72, User{UID: 1, UserID: "1", Password: "123456789"}},
		{"uid 65536", 72, User{UID: 65536, UserID: "1"}},
		{"NUL in name", 72, User{UID: 1, UserID: "1", Name: "a\x00b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := AppendUser([]byte{7}, tt.u, tt.size); err == nil || !bytes.Equal(got, []byte{7}) {
				t.Errorf("AppendUser = % x, %v; want dst unchanged and an error", got, err)
			}
		})
	}
}

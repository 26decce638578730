package proto

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"strconv"
)

// The id functions below are the identity of a record across the pipeline.
// Each is a truncated SHA-256 over length-prefixed fields, so that no choice
// of field contents can make two different tuples collide by concatenation.
// An id is 32 lowercase hex characters. Ids are published as Nats-Msg-Id, so
// JetStream drops a re-published record inside the duplicate window, and the
// loaders' unique keys drop it after that.
//
// The string fields must be valid UTF-8 (decode a device's legacy code page
// first): JSON carries only UTF-8, so Encode turns an invalid byte into U+FFFD
// and the id could no longer be recomputed from the message.

// PunchID is the id of a raw punch: the device serial, the device's user id,
// the device time exactly as reported and the punch state code.
func PunchID(deviceSerial, userID, deviceTime string, state int) string {
	return hashID("punch", deviceSerial, userID, deviceTime, strconv.Itoa(state))
}

// RecordID is the id of a raw business record: the source name, the record's
// natural key and its content (the payload bytes as received). A record whose
// content changes gets a new id, so the change is loaded as a new version.
func RecordID(source, naturalKey string, content []byte) string {
	return hashID("record", source, naturalKey, string(content))
}

// CleanID is the id of a transformer output: the input id and the rules
// version. Re-processing under the same rules yields the same id; a new rules
// version yields new ids, so a replay under new rules is loaded as new rows
// with their lineage.
func CleanID(inputID, rulesVersion string) string {
	return hashID("clean", inputID, rulesVersion)
}

// AttendanceID is the id of an attendance event: CleanID(inputID,
// rulesVersion) when rosterVersion is empty (no roster entry applied), and
// otherwise the same recipe over the three fields (input id, rules version,
// roster version). Re-processing under the same rules and roster yields the
// same id; a roster fix for the person yields a new one, so a replay after
// the fix is loaded as a new row with its lineage.
func AttendanceID(inputID, rulesVersion, rosterVersion string) string {
	if rosterVersion == "" {
		return CleanID(inputID, rulesVersion)
	}
	return hashID("clean", inputID, rulesVersion, rosterVersion)
}

// HeartbeatID is the id of a heartbeat: the source and the collection run.
func HeartbeatID(source, runID string) string {
	return hashID("heartbeat", source, runID)
}

func hashID(kind string, parts ...string) string {
	size := len(kind)
	for _, p := range parts {
		size += binary.MaxVarintLen64 + len(p)
	}
	var sum [sha256.Size]byte
	if size <= 512 {
		// The common case (every id but a large record's) hashes one buffer
		// on the stack: no allocation but the returned string.
		var stack [512]byte
		buf := append(stack[:0], kind...)
		for _, p := range parts {
			buf = binary.AppendUvarint(buf, uint64(len(p)))
			buf = append(buf, p...)
		}
		sum = sha256.Sum256(buf)
	} else {
		h := sha256.New()
		var n [binary.MaxVarintLen64]byte
		h.Write([]byte(kind))
		for _, p := range parts {
			h.Write(n[:binary.PutUvarint(n[:], uint64(len(p)))])
			h.Write([]byte(p))
		}
		h.Sum(sum[:0])
	}
	var out [32]byte
	hex.Encode(out[:], sum[:16])
	return string(out[:])
}

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

// HeartbeatID is the id of a heartbeat: the source and the collection run.
func HeartbeatID(source, runID string) string {
	return hashID("heartbeat", source, runID)
}

func hashID(kind string, parts ...string) string {
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	h.Write([]byte(kind))
	for _, p := range parts {
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(p)))])
		h.Write([]byte(p))
	}
	sum := h.Sum(nil)
	return hex.EncodeToString(sum[:16])
}

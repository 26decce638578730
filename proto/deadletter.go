package proto

import (
	"cmp"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Dead-letter header names. A dead letter's body is the original message's
// body, unchanged (or the raw bytes of a line or record that never became a
// message); everything about why it failed travels in these headers.
const (
	HeaderDLQStage           = "Punchflow-Dlq-Stage"
	HeaderDLQReasonCode      = "Punchflow-Dlq-Reason-Code"
	HeaderDLQReason          = "Punchflow-Dlq-Reason"
	HeaderDLQOriginalSubject = "Punchflow-Dlq-Original-Subject"
	HeaderDLQOriginalStream  = "Punchflow-Dlq-Original-Stream"
	HeaderDLQOriginalSeq     = "Punchflow-Dlq-Original-Sequence"
	HeaderDLQDeliveries      = "Punchflow-Dlq-Deliveries"
	HeaderDLQSourceFile      = "Punchflow-Dlq-Source-File"
	HeaderDLQSourceLine      = "Punchflow-Dlq-Source-Line"
	HeaderDLQFailedAt        = "Punchflow-Dlq-Failed-At"
	HeaderDLQSink            = "Punchflow-Dlq-Sink"
)

// Reason codes: a small, stable vocabulary that operators can count and
// filter on. The free-text reason says what exactly to fix.
const (
	ReasonDecode         = "decode"           // the bytes are not a valid message
	ReasonInvalid        = "invalid"          // a field breaks the contract or the rules
	ReasonBadLine        = "bad_line"         // a CSV line that could not be read
	ReasonRetriesSpent   = "retries_spent"    // a transient failure outlived the delivery budget
	ReasonRejectedBySink = "rejected_by_sink" // the database refused the row
)

// DeadLetter describes why a message went to the dead-letter stream. It
// travels as headers (Header, DeadLetterFromHeader); its JSON form, described
// by schema/dead_letter.schema.json, is what tools print.
type DeadLetter struct {
	// SchemaVersion is the version of the dead letter's own headers; Header
	// stamps SchemaVersion when it is empty.
	SchemaVersion   string    `json:"schema_version"`
	Stage           string    `json:"stage"`
	ReasonCode      string    `json:"reason_code"`
	Reason          string    `json:"reason"`
	OriginalSubject string    `json:"original_subject"`
	OriginalStream  string    `json:"original_stream,omitempty"`
	OriginalSeq     uint64    `json:"original_sequence,omitempty"`
	Deliveries      uint64    `json:"deliveries,omitempty"`
	SourceFile      string    `json:"source_file,omitempty"`
	SourceLine      int       `json:"source_line,omitempty"`
	FailedAt        time.Time `json:"failed_at"`
	// MsgID and CorrelationID repeat the original's headers, when it had them.
	MsgID         string `json:"msg_id,omitempty"`
	CorrelationID string `json:"correlation_id,omitempty"`
	// Sink names, on a dead letter of the load stage, the loader's sink
	// that refused the message (postgres, mysql, sqlite): a message that
	// two sinks refuse has a dead letter from each (since 1.2).
	Sink string `json:"sink,omitempty"`
}

// Subject is the dead letter's subject: DLQSubject(Stage, OriginalSubject).
func (d *DeadLetter) Subject() string { return DLQSubject(d.Stage, d.OriginalSubject) }

// Validate reports the first field that breaks the contract: Stage must be
// one of the Stage* constants, ReasonCode must be set, SourceLine must not be
// negative.
func (d *DeadLetter) Validate() error {
	const m = KindDeadLetter
	switch {
	case d.Stage == "":
		return missing(m, "stage")
	case d.ReasonCode == "":
		return missing(m, "reason_code")
	}
	switch d.Stage {
	case StageCollect, StageTransform, StageLoad, StageHealth:
	default:
		return &FieldError{Message: m, Field: "stage", Problem: "must be collect, transform, load or health, got " + quote(d.Stage)}
	}
	if d.SourceLine < 0 {
		return &FieldError{Message: m, Field: "source_line", Problem: "must not be negative, got " + strconv.Itoa(d.SourceLine)}
	}
	return checkVersion(m, d.SchemaVersion)
}

// Header renders d as NATS headers (the map converts to nats.Header). The
// dead letter's own Nats-Msg-Id is derived from the original id, the stage
// and the sink, so a retried dead-lettering is de-duplicated too, while two
// sinks refusing the same message each keep theirs. Header values are text:
// bytes that are not UTF-8 (a reason quoting a Latin-1 CSV line) become
// U+FFFD, as they would in the JSON form.
func (d *DeadLetter) Header() map[string][]string {
	h := map[string][]string{
		HeaderType:               {KindDeadLetter},
		HeaderSchemaVersion:      {headerText(cmp.Or(d.SchemaVersion, SchemaVersion))},
		HeaderDLQStage:           {headerText(d.Stage)},
		HeaderDLQReasonCode:      {headerText(d.ReasonCode)},
		HeaderDLQReason:          {headerText(d.Reason)},
		HeaderDLQOriginalSubject: {headerText(d.OriginalSubject)},
		HeaderDLQFailedAt:        {d.FailedAt.UTC().Format(time.RFC3339Nano)},
	}
	set := func(k, v string) {
		if v != "" {
			h[k] = []string{headerText(v)}
		}
	}
	set(HeaderDLQOriginalStream, d.OriginalStream)
	if d.OriginalSeq > 0 {
		set(HeaderDLQOriginalSeq, strconv.FormatUint(d.OriginalSeq, 10))
	}
	if d.Deliveries > 0 {
		set(HeaderDLQDeliveries, strconv.FormatUint(d.Deliveries, 10))
	}
	set(HeaderDLQSourceFile, d.SourceFile)
	if d.SourceLine > 0 {
		set(HeaderDLQSourceLine, strconv.Itoa(d.SourceLine))
	}
	set(HeaderCorrelationID, d.CorrelationID)
	set(HeaderDLQSink, d.Sink)
	if d.MsgID != "" {
		set(HeaderMsgID, d.msgIDPrefix()+d.MsgID)
	}
	return h
}

// msgIDPrefix is what the dead letter's Nats-Msg-Id puts before the
// original id.
func (d *DeadLetter) msgIDPrefix() string {
	if d.Sink != "" {
		return "dlq-" + d.Stage + "-" + d.Sink + "-"
	}
	return "dlq-" + d.Stage + "-"
}

// DeadLetterFromHeader reads a dead letter back from its headers and
// validates it. The error wraps ErrUnsupportedVersion when the headers carry a
// newer major schema version, and ErrInvalid otherwise.
func DeadLetterFromHeader(h map[string][]string) (DeadLetter, error) {
	get := func(k string) string {
		if v := h[k]; len(v) > 0 {
			return headerText(v[0])
		}
		return ""
	}
	d := DeadLetter{
		SchemaVersion:   get(HeaderSchemaVersion),
		Stage:           get(HeaderDLQStage),
		ReasonCode:      get(HeaderDLQReasonCode),
		Reason:          get(HeaderDLQReason),
		OriginalSubject: get(HeaderDLQOriginalSubject),
		OriginalStream:  get(HeaderDLQOriginalStream),
		SourceFile:      get(HeaderDLQSourceFile),
		CorrelationID:   get(HeaderCorrelationID),
		Sink:            get(HeaderDLQSink),
	}
	if err := checkVersion(KindDeadLetter, d.SchemaVersion); errors.Is(err, ErrUnsupportedVersion) {
		return d, err
	}
	if id := get(HeaderMsgID); id != "" {
		d.MsgID = trimPrefix(id, d.msgIDPrefix())
	}
	var err error
	num := func(k string, dst *uint64) {
		if s := get(k); s != "" && err == nil {
			*dst, err = strconv.ParseUint(s, 10, 64)
		}
	}
	num(HeaderDLQOriginalSeq, &d.OriginalSeq)
	num(HeaderDLQDeliveries, &d.Deliveries)
	if s := get(HeaderDLQSourceLine); s != "" && err == nil {
		d.SourceLine, err = strconv.Atoi(s)
	}
	if s := get(HeaderDLQFailedAt); s != "" && err == nil {
		d.FailedAt, err = time.Parse(time.RFC3339Nano, s)
		// Header writes UTC: refuse an instant whose UTC year has no
		// RFC 3339 form (9999-12-31T23:00:00-02:00), or it would not read back.
		if y := d.FailedAt.UTC().Year(); err == nil && (y < 0 || y > 9999) {
			err = fmt.Errorf("%s %q is outside years 0000 to 9999 in UTC", HeaderDLQFailedAt, s)
		}
	}
	if err != nil {
		return d, fmt.Errorf("%w: dead letter header: %v", ErrInvalid, err)
	}
	if err := d.Validate(); err != nil {
		return d, fmt.Errorf("dead letter header: %w", err)
	}
	return d, nil
}

func trimPrefix(s, p string) string {
	if len(s) >= len(p) && s[:len(p)] == p {
		return s[len(p):]
	}
	return s
}

// headerText makes s valid UTF-8, replacing invalid bytes with U+FFFD (as
// JSON encoding does), so that both forms of a dead letter read the same.
func headerText(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

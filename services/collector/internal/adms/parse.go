package adms

import (
	"bytes"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// AttLog is one ATTLOG line as the device pushed it.
type AttLog struct {
	// Line is the 1-based line number in the upload.
	Line int
	// PIN is the device's user id, exactly as sent (never assumed numeric).
	PIN string
	// Time is the device's local wall clock, without zone (held in UTC).
	Time     time.Time
	Status   int
	Verify   int
	WorkCode int
}

// BadLine is an ATTLOG line that could not be read.
type BadLine struct {
	Line   int
	Raw    string
	Reason string
}

// maxPIN bounds a user id. ADMS carries it as text, without the 24-byte
// field of the binary protocol; anything longer is not a real PIN.
const maxPIN = 64

// timeLayouts are the ATTLOG time forms seen from devices.
var timeLayouts = []string{"2006-01-02 15:04:05", "2006-01-02T15:04:05"}

// ParseATTLOG reads the body of an ATTLOG upload: one record per line,
// tab-separated positional fields PIN, time (YYYY-MM-DD hh:mm:ss, the
// device's local clock), status, verify, work code and reserved fields.
// Only PIN and time are required; a missing status, verify or work code is
// 0. Empty lines are skipped; every other line that cannot be read comes
// back as a BadLine with the reason. It does no I/O.
func ParseATTLOG(body []byte) ([]AttLog, []BadLine) {
	var recs []AttLog
	var bad []BadLine
	for i, raw := range bytes.Split(body, []byte("\n")) {
		line := strings.TrimRight(string(raw), "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		r, err := parseAttLogLine(line)
		if err != nil {
			bad = append(bad, BadLine{Line: i + 1, Raw: line, Reason: err.Error()})
			continue
		}
		r.Line = i + 1
		recs = append(recs, r)
	}
	return recs, bad
}

func parseAttLogLine(line string) (AttLog, error) {
	var r AttLog
	if !utf8.ValidString(line) {
		return r, fmt.Errorf("line is not UTF-8 text")
	}
	f := strings.Split(line, "\t")
	if len(f) < 2 {
		return r, fmt.Errorf("want tab-separated PIN and time (and status, verify, work code), got %d field", len(f))
	}
	r.PIN = strings.TrimSpace(f[0])
	switch {
	case r.PIN == "":
		return r, fmt.Errorf("PIN is empty")
	case len(r.PIN) > maxPIN:
		return r, fmt.Errorf("PIN is %d bytes, longer than %d", len(r.PIN), maxPIN)
	case strings.IndexFunc(r.PIN, func(c rune) bool { return !unicode.IsPrint(c) }) >= 0:
		return r, fmt.Errorf("PIN %q has unprintable characters", r.PIN)
	}
	ts := strings.TrimSpace(f[1])
	var err error
	for _, layout := range timeLayouts {
		if r.Time, err = time.Parse(layout, ts); err == nil {
			break
		}
	}
	if err != nil {
		return r, fmt.Errorf("time %q is not YYYY-MM-DD hh:mm:ss", ts)
	}
	if y := r.Time.Year(); y < 2000 || y > 2099 {
		return r, fmt.Errorf("time %s is outside 2000–2099 (a reset clock)", ts)
	}
	ints := []struct {
		name string
		dst  *int
		max  int
	}{{"status", &r.Status, 255}, {"verify", &r.Verify, 255}, {"work code", &r.WorkCode, 1<<31 - 1}}
	for i, n := range ints {
		if len(f) <= 2+i {
			break
		}
		v := strings.TrimSpace(f[2+i])
		if v == "" {
			continue
		}
		x, err := strconv.Atoi(v)
		if err != nil || x < 0 || x > n.max {
			return r, fmt.Errorf("%s %q is not a number from 0 to %d", n.name, v, n.max)
		}
		*n.dst = x
	}
	return r, nil
}

// Result is one command confirmation a device posted to /iclock/devicecmd.
type Result struct {
	ID      int    `json:"id"`
	Command string `json:"command"`
	Return  int    `json:"return"`
	// Content is a command's output (Shell's Content=, or the key=value
	// lines after an INFO confirmation, joined with newlines).
	Content string `json:"content,omitempty"`
	// Info holds the key=value lines that followed the confirmation (an
	// INFO result's device information).
	Info map[string]string `json:"-"`
}

// ParseResults reads a devicecmd body: confirmations one per line
// ("ID=1&Return=0&CMD=INFO"), the multi-line form ("ID=32", "Return=0",
// "CMD=Shell", "Content=…"), and key=value lines after a confirmation
// (INFO's device information). A line that fits none is returned in
// unknown. It does no I/O.
func ParseResults(body []byte) (results []Result, unknown []string) {
	var cur *Result
	for _, raw := range strings.Split(string(body), "\n") {
		line := strings.TrimSpace(strings.TrimRight(raw, "\r"))
		if line == "" {
			continue
		}
		if strings.HasPrefix(line, "ID=") && strings.Contains(line, "&") {
			q, err := url.ParseQuery(line)
			id, err2 := strconv.Atoi(q.Get("ID"))
			ret, err3 := strconv.Atoi(q.Get("Return"))
			if err != nil || err2 != nil || err3 != nil {
				unknown = append(unknown, line)
				cur = nil
				continue
			}
			results = append(results, Result{ID: id, Return: ret, Command: q.Get("CMD"), Info: map[string]string{}})
			cur = &results[len(results)-1]
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		k = strings.TrimPrefix(strings.TrimSpace(k), "~")
		switch {
		case !ok:
			unknown = append(unknown, line)
		case k == "ID":
			id, err := strconv.Atoi(v)
			if err != nil {
				unknown = append(unknown, line)
				cur = nil
				continue
			}
			results = append(results, Result{ID: id, Info: map[string]string{}})
			cur = &results[len(results)-1]
		case cur == nil:
			unknown = append(unknown, line)
		case k == "Return" && cur.Command == "" && cur.Content == "":
			if n, err := strconv.Atoi(v); err == nil {
				cur.Return = n
			}
		case k == "CMD" && cur.Command == "":
			cur.Command = v
		case k == "Content":
			cur.Content = v
		default:
			cur.Info[k] = v
			if cur.Content != "" {
				cur.Content += "\n"
			}
			cur.Content += k + "=" + v
		}
	}
	return results, unknown
}

// ParseInfo reads device information: key=value pairs separated by
// newlines or commas, keys optionally prefixed with "~" (the body of a
// table=options upload or of /iclock/registry).
func ParseInfo(body []byte) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(string(body), "\n") {
		for _, part := range strings.Split(line, ",") {
			k, v, ok := strings.Cut(strings.TrimSpace(strings.TrimRight(part, "\r")), "=")
			k = strings.TrimPrefix(strings.TrimSpace(k), "~")
			if ok && k != "" {
				out[k] = strings.TrimSpace(v)
			}
		}
	}
	return out
}

// ParseInfoParam reads the INFO query parameter of /iclock/getrequest:
// firmware, users, fingerprints, attendance records, IP address, … in that
// order.
func ParseInfoParam(v string) map[string]string {
	if v == "" {
		return nil
	}
	names := []string{"FWVersion", "UserCount", "FPCount", "TransactionCount", "IPAddress", "FPVersion", "FaceVersion", "FaceEnrollCount", "FaceCount"}
	out := map[string]string{}
	for i, f := range strings.Split(v, ",") {
		if i < len(names) && strings.TrimSpace(f) != "" {
			out[names[i]] = strings.TrimSpace(f)
		}
	}
	return out
}

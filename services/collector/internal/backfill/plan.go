// Package backfill re-reads explicit date ranges of the windowed sources
// (HTTP APIs, SQL tables) into the raw stream, chunked and resumable: the
// range is split into windows of 1 to 30 days per source, a source's windows
// run one after another (sequential) or several at once (parallel), and
// every finished window is recorded in the collector's checkpoint bucket
// with compare-and-swap, so a rerun skips what is done and resumes the
// rest. When a source's whole range is done, its live cursor is moved to
// the end of the range (never back), so the live loop continues after the
// backfill. Records carry their ids as Nats-Msg-Id: a window read twice
// (a crash between publishing and recording it) adds nothing downstream.
//
// Command is the "collector backfill" subcommand.
package backfill

import (
	"fmt"
	"strings"
	"time"

	"github.com/punchflow/punchflow/proto"
	"github.com/punchflow/punchflow/services/collector/internal/extract"
)

// DateLayout is how backfill dates are written on the command line and in
// window keys.
const DateLayout = "2006-01-02"

// Window is one chunk of a backfill: the days First..Last (inclusive) in
// the backfill's time zone, read as the time window [From, To).
type Window struct {
	First, Last string // YYYY-MM-DD
	extract.Window
}

// Split cuts the days first..last (inclusive, YYYY-MM-DD, in loc) into
// windows of chunkDays days; the last window may be shorter. It is pure.
func Split(first, last string, chunkDays int, loc *time.Location) ([]Window, error) {
	if chunkDays < 1 || chunkDays > 30 {
		return nil, fmt.Errorf("chunk days %d must be from 1 to 30", chunkDays)
	}
	from, err := time.ParseInLocation(DateLayout, first, loc)
	if err != nil {
		return nil, fmt.Errorf("from %q is not a date (YYYY-MM-DD)", first)
	}
	to, err := time.ParseInLocation(DateLayout, last, loc)
	if err != nil {
		return nil, fmt.Errorf("to %q is not a date (YYYY-MM-DD)", last)
	}
	if to.Before(from) {
		return nil, fmt.Errorf("to %s is before from %s", last, first)
	}
	var out []Window
	for d := from; !d.After(to); d = d.AddDate(0, 0, chunkDays) {
		end := d.AddDate(0, 0, chunkDays-1)
		if end.After(to) {
			end = to
		}
		// Days are added in the zone, so a window spans whole local days
		// across daylight-saving changes.
		out = append(out, Window{
			First: d.Format(DateLayout), Last: end.Format(DateLayout),
			Window: extract.Window{From: d.UTC(), To: end.AddDate(0, 0, 1).UTC()},
		})
	}
	return out, nil
}

// Key is the KV key recording a window of a source:
// backfill.<source>.<first>.<last>.
func Key(source string, w Window) string {
	return "backfill." + proto.Token(source) + "." + w.First + "." + w.Last
}

// ParsePerSource reads a per-source option: either one value for every
// source ("3") or source:value pairs ("a:3,b:5"). It returns the value per
// named source and the value for all (empty when only pairs were given).
func ParsePerSource(s string) (all string, per map[string]string, err error) {
	per = map[string]string{}
	s = strings.TrimSpace(s)
	if s == "" {
		return "", per, nil
	}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		k, v, ok := strings.Cut(part, ":")
		if !ok {
			if all != "" {
				return "", nil, fmt.Errorf("%q: give one value for all sources or source:value pairs", s)
			}
			all = part
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if k == "" || v == "" {
			return "", nil, fmt.Errorf("%q: %q is not source:value", s, part)
		}
		if _, dup := per[k]; dup {
			return "", nil, fmt.Errorf("%q: source %s is given twice", s, k)
		}
		per[k] = v
	}
	return all, per, nil
}

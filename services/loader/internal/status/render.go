package status

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/segmentio/encoding/json"
)

// WriteJSON writes r as indented JSON.
func (r Report) WriteJSON(w io.Writer) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode status: %w", err)
	}
	b = append(b, '\n')
	_, err = w.Write(b)
	return err
}

// WriteTable writes r as aligned text: one line per sink, then each sink's
// recent batches, then the dead letters by reason.
func (r Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "SINK\tCONSUMER\tSUBJECTS\tPENDING\tACK PENDING\tLAG\tREDELIVERED\tBATCHES (%s)\tINSERTED\tDUPLICATES\tFAILED\tDEAD LETTERS\n", r.Window)
	for _, s := range r.Sinks {
		c := s.Consumer
		lag := fmt.Sprint(c.Lag())
		pending, ackPending, redelivered := fmt.Sprint(c.Pending), fmt.Sprint(c.AckPending), fmt.Sprint(c.Redelivered)
		if c.Error != "" {
			pending, ackPending, lag, redelivered = "?", "?", "?", "?"
		}
		committed, inserted, dups, failed := fmt.Sprint(s.Batches.Committed), fmt.Sprint(s.Batches.Inserted), fmt.Sprint(s.Batches.Duplicates), fmt.Sprint(s.Batches.Failed)
		if s.Batches.Error != "" {
			committed, inserted, dups, failed = "?", "?", "?", "?"
		}
		var dead uint64
		for _, n := range s.DeadLetters {
			dead += n
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\n", s.Sink, c.Name, strings.Join(c.Subjects, ","),
			pending, ackPending, lag, redelivered, committed, inserted, dups, failed, dead)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, s := range r.Sinks {
		fmt.Fprintf(w, "\n%s:\n", s.Sink)
		if s.Consumer.Error != "" {
			fmt.Fprintf(w, "  consumer: %s\n", s.Consumer.Error)
		}
		if s.Batches.Error != "" {
			fmt.Fprintf(w, "  batches: %s\n", s.Batches.Error)
		}
		if len(s.Batches.Recent) == 0 && s.Batches.Error == "" {
			fmt.Fprintf(w, "  no batches yet\n")
		}
		if len(s.Batches.Recent) > 0 {
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintf(tw, "  STARTED\tBATCH\tROWS\tINSERTED\tDUPLICATES\tSEQUENCES\tTOOK\tOUTCOME\n")
			for _, b := range s.Batches.Recent {
				outcome := b.Outcome
				if b.Error != "" {
					outcome += ": " + oneLine(b.Error, 100)
				}
				fmt.Fprintf(tw, "  %s\t%s\t%d\t%d\t%d\t%d-%d\t%s\t%s\n", b.StartedAt.UTC().Format(time.RFC3339Nano), b.ID,
					b.Rows, b.Inserted, b.Duplicates, b.FirstSeq, b.LastSeq, time.Duration(b.DurationMS)*time.Millisecond, outcome)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
		}
		if len(s.DeadLetters) > 0 {
			fmt.Fprintf(w, "  dead letters: %s\n", reasons(s.DeadLetters))
		}
	}
	d := r.DeadLetters
	fmt.Fprintf(w, "\ndead letters of the load stage: %d", d.Total)
	if d.Truncated {
		fmt.Fprintf(w, " (counted up to the scan limit)")
	}
	fmt.Fprintln(w)
	if n := d.BySink["unknown"]; len(n) > 0 {
		fmt.Fprintf(w, "  without a sink header: %s\n", reasons(n))
	}
	if d.Error != "" {
		fmt.Fprintf(w, "  %s\n", d.Error)
	}
	return nil
}

func reasons(m map[string]uint64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	return strings.Join(parts, " ")
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}

// Package state folds heartbeats into the last known state of each device or
// source. It is pure: no I/O, no clock.
package state

import (
	"time"

	"github.com/punchflow/punchflow/proto"
)

// Statuses a source can have from its heartbeats alone.
const (
	StatusOK          = "ok"          // the last session or run succeeded
	StatusFailing     = "failing"     // reachable, but the last run reported an error
	StatusUnreachable = "unreachable" // the last session could not reach it
)

// Source is the state kept per device or source.
type Source struct {
	Source string `json:"source"`
	Kind   string `json:"kind"`
	Site   string `json:"site,omitempty"`
	Status string `json:"status"`
	// Since is when Status last changed.
	Since               time.Time       `json:"since"`
	LastSeenAt          time.Time       `json:"last_seen_at"`
	LastSuccessAt       *time.Time      `json:"last_success_at,omitempty"`
	ConsecutiveFailures int             `json:"consecutive_failures"`
	Heartbeats          int             `json:"heartbeats"`
	RecordsPublished    int             `json:"records_published_total"`
	RecordsRejected     int             `json:"records_rejected_total"`
	Last                proto.Heartbeat `json:"last_heartbeat"`
}

// Key is the KV key of a heartbeat's source: "<kind>.<source token>".
func Key(hb proto.Heartbeat) string { return hb.Kind + "." + proto.Token(hb.Source) }

// Apply folds hb into prev (nil for a source never seen) and returns the new
// state and whether anything changed. A heartbeat older than the last one
// applied (a redelivery, or replicas racing) changes nothing.
func Apply(prev *Source, hb proto.Heartbeat) (Source, bool) {
	var s Source
	if prev != nil {
		if !hb.ObservedAt.After(prev.LastSeenAt) {
			return *prev, false
		}
		s = *prev
	}
	s.Source, s.Kind, s.Last = hb.Source, hb.Kind, hb
	if hb.Site != "" {
		s.Site = hb.Site
	}
	s.LastSeenAt = hb.ObservedAt
	s.Heartbeats++
	s.RecordsPublished += hb.RecordsPublished
	s.RecordsRejected += hb.RecordsRejected
	status := StatusOK
	switch {
	case !hb.Reachable:
		status = StatusUnreachable
	case hb.ErrorClass != "":
		status = StatusFailing
	}
	if status == StatusOK {
		t := hb.ObservedAt
		s.LastSuccessAt = &t
		s.ConsecutiveFailures = 0
	} else {
		s.ConsecutiveFailures++
	}
	if status != s.Status {
		s.Status, s.Since = status, hb.ObservedAt
	}
	return s, true
}

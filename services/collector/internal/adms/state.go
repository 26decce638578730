package adms

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/segmentio/encoding/json"

	"github.com/punchflow/punchflow/proto"
)

// State is what the server keeps per device in the checkpoint bucket (key
// adms.<serial>), shared by every collector replica: the tables' stamps,
// the command queue and the device's information. Every change is a
// compare-and-swap, so replicas never overwrite each other.
type State struct {
	// Stamps are the high-water marks per table (ATTLOG, OPERLOG,
	// ATTPHOTO) the device sent with its last acknowledged upload.
	Stamps map[string]string `json:"stamps,omitempty"`
	// NextID is the id of the last command queued.
	NextID  int       `json:"next_id"`
	Pending []Command `json:"pending,omitempty"`
	// Results are the last confirmations, newest last.
	Results []Done `json:"results,omitempty"`
	// Info is what the device said about itself (INFO, options).
	Info      map[string]string `json:"info,omitempty"`
	FirstSeen time.Time         `json:"first_seen"`
}

// Command is a queued command.
type Command struct {
	ID       int       `json:"id"`
	Command  string    `json:"command"`
	QueuedAt time.Time `json:"queued_at"`
	// SentAt is when a getrequest last delivered it; Sends counts the
	// deliveries (a command not confirmed in time is sent again).
	SentAt time.Time `json:"sent_at,omitempty"`
	Sends  int       `json:"sends,omitempty"`
}

// Done is a confirmed (or expired) command.
type Done struct {
	Command
	Return      int       `json:"return"`
	Content     string    `json:"content,omitempty"`
	ConfirmedAt time.Time `json:"confirmed_at"`
	// Expired is true when the device never confirmed it.
	Expired bool `json:"expired,omitempty"`
}

// keepResults is how many confirmations State keeps.
const keepResults = 20

// StateKey is the KV key of a device's state.
func StateKey(serial string) string { return "adms." + proto.Token(serial) }

// store is the slice of jetstream.KeyValue the server keeps state in.
type store interface {
	Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error)
	Create(ctx context.Context, key string, value []byte, opts ...jetstream.KVCreateOpt) (uint64, error)
	Update(ctx context.Context, key string, value []byte, revision uint64) (uint64, error)
}

func loadState(ctx context.Context, kv store, serial string) (State, uint64, error) {
	var st State
	e, err := kv.Get(ctx, StateKey(serial))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return st, 0, nil
	}
	if err != nil {
		return st, 0, fmt.Errorf("read state of device %s: %w", serial, err)
	}
	if err := json.Unmarshal(e.Value(), &st); err != nil {
		return st, 0, fmt.Errorf("state of device %s is not valid JSON: %w", serial, err)
	}
	return st, e.Revision(), nil
}

// updateState applies change to the device's state with compare-and-swap,
// retrying on conflicts; change returns false when nothing changed (no
// write). It returns the state as stored.
func updateState(ctx context.Context, kv store, serial string, change func(*State) bool) (State, error) {
	for attempt := 0; attempt < 16; attempt++ {
		st, rev, err := loadState(ctx, kv, serial)
		if err != nil {
			return st, err
		}
		if !change(&st) {
			return st, nil
		}
		b, err := json.Marshal(st)
		if err != nil {
			return st, err
		}
		if rev == 0 {
			_, err = kv.Create(ctx, StateKey(serial), b)
		} else {
			_, err = kv.Update(ctx, StateKey(serial), b, rev)
		}
		if err == nil {
			return st, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return st, fmt.Errorf("write state of device %s: %w", serial, err)
		}
	}
	return State{}, fmt.Errorf("write state of device %s: too many concurrent updates", serial)
}

// newerStamp reports whether stamp b is newer than a: numerically when both
// are numbers, else whenever they differ.
func newerStamp(a, b string) bool {
	if b == "" || a == b {
		return false
	}
	x, err1 := strconv.ParseInt(a, 10, 64)
	y, err2 := strconv.ParseInt(b, 10, 64)
	if err1 == nil && err2 == nil {
		return y > x
	}
	return true
}

// due returns the pending commands to deliver now: never sent, or sent
// more than resend ago. It marks them sent. Commands sent maxSends times
// without a confirmation are moved to the results as expired.
func (st *State) due(now time.Time, resend time.Duration, maxSends int) []Command {
	var out []Command
	keep := st.Pending[:0]
	for _, c := range st.Pending {
		if !c.SentAt.IsZero() && now.Sub(c.SentAt) < resend {
			keep = append(keep, c)
			continue
		}
		if c.Sends >= maxSends {
			st.addResult(Done{Command: c, Return: -1, ConfirmedAt: now, Expired: true})
			continue
		}
		c.SentAt, c.Sends = now, c.Sends+1
		out = append(out, c)
		keep = append(keep, c)
	}
	st.Pending = keep
	return out
}

func (st *State) addResult(d Done) {
	st.Results = append(st.Results, d)
	if n := len(st.Results); n > keepResults {
		st.Results = append(st.Results[:0], st.Results[n-keepResults:]...)
	}
}

// confirm moves a pending command to the results. It reports whether the
// command was pending.
func (st *State) confirm(r Result, now time.Time) bool {
	for i, c := range st.Pending {
		if c.ID == r.ID {
			st.Pending = append(st.Pending[:i], st.Pending[i+1:]...)
			content := r.Content
			if len(content) > 2000 {
				content = content[:2000] + "…"
			}
			st.addResult(Done{Command: c, Return: r.Return, Content: content, ConfirmedAt: now})
			return true
		}
	}
	return false
}

// hasPending reports whether a command with this text waits.
func (st *State) hasPending(cmd string) bool {
	for _, c := range st.Pending {
		if c.Command == cmd {
			return true
		}
	}
	return false
}

// mergeInfo adds info to the state's; it reports whether anything changed.
func (st *State) mergeInfo(info map[string]string) bool {
	changed := false
	for k, v := range info {
		if st.Info == nil {
			st.Info = map[string]string{}
		}
		if st.Info[k] != v {
			st.Info[k] = v
			changed = true
		}
	}
	return changed
}

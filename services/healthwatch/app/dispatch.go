package app

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"sort"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/punchflow/punchflow/proto"
	"github.com/punchflow/punchflow/services/healthwatch/internal/notify"
	"github.com/punchflow/punchflow/services/healthwatch/internal/state"
)

// dispatch delivers the notifications routed to channel name until ctx
// ends. Each channel has its own durable consumer on the alerts stream and
// its own worker, so a channel that fails or waits out a Retry-After holds
// back only itself; heartbeats are never held back by any. Alerts arriving
// within the policy's group_wait are sent as one message.
func (a *app) dispatch(ctx context.Context, name string) error {
	cons := a.chanCons[name]
	for ctx.Err() == nil {
		first, err := cons.Next(jetstream.FetchContext(ctx))
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, nats.ErrTimeout) {
				a.rt.Log.Warn("fetch notifications, will retry", "channel", name, "err", err)
				sleep(ctx, time.Second)
			}
			continue
		}
		msgs := []jetstream.Msg{first}
		msgs = append(msgs, a.collect(ctx, cons, isAlert(first))...)
		a.deliverBatch(ctx, name, msgs)
	}
	return nil
}

// isAlert reports whether msg carries an alert (as opposed to a report).
func isAlert(msg jetstream.Msg) bool {
	var it struct {
		Type string `json:"type"`
	}
	return json.Unmarshal(msg.Data(), &it) == nil && it.Type == notify.TypeAlert
}

// collect gathers what else is queued: for an alert, whatever arrives
// within the group window, so that alerts close together go out as one
// message; for a report, only what is already there.
func (a *app) collect(ctx context.Context, cons jetstream.Consumer, group bool) []jetstream.Msg {
	var batch jetstream.MessageBatch
	var err error
	if !group || a.pol.GroupWait <= 0 {
		batch, err = cons.FetchNoWait(99)
	} else {
		gctx, cancel := context.WithTimeout(ctx, a.pol.GroupWait)
		defer cancel()
		batch, err = cons.Fetch(99, jetstream.FetchContext(gctx))
	}
	if err != nil {
		return nil
	}
	var out []jetstream.Msg
	for m := range batch.Messages() {
		out = append(out, m)
	}
	return out
}

type pending struct {
	item notify.Item
	msg  jetstream.Msg
}

// deliverBatch sends what in msgs is routed to the channel and not yet
// delivered, grouped into messages, and settles every msg.
func (a *app) deliverBatch(ctx context.Context, name string, msgs []jetstream.Msg) {
	sender := a.senders[name]
	var items []notify.Item
	byID := map[string][]jetstream.Msg{}
	for _, msg := range msgs {
		var it notify.Item
		if err := json.Unmarshal(msg.Data(), &it); err != nil || it.ID == "" {
			a.rt.Log.Error("notification is not readable; dropped", "channel", name, "subject", msg.Subject(), "err", err)
			_ = msg.TermWithReason("unreadable notification")
			continue
		}
		switch {
		case !slices.Contains(a.pol.ChannelsOf(it.Teams), name):
			ack(msg)
			continue
		case !sender.Accepts(it.Type):
			ack(msg)
			continue
		case a.delivered(ctx, name, it.ID):
			ack(msg)
			continue
		}
		if _, seen := byID[it.ID]; !seen {
			items = append(items, it)
		}
		byID[it.ID] = append(byID[it.ID], msg)
	}
	sort.SliceStable(items, func(i, j int) bool { return items[i].Created.Before(items[j].Created) })
	for _, m := range a.comp.Compose(items, a.now()) {
		var held []jetstream.Msg
		for _, id := range m.ItemIDs {
			held = append(held, byID[id]...)
		}
		a.deliver(ctx, name, m, held)
	}
}

// deliver sends one message with retries, keeping its stream messages in
// progress meanwhile (so no other replica takes them), then settles them:
// accepted → delivery markers, then ack; rejected for good (a payload the
// channel refuses) → logged, counted, terminated; anything else → counted
// and returned for a later try.
func (a *app) deliver(ctx context.Context, name string, m notify.Message, held []jetstream.Msg) {
	c := a.pol.Channels[name]
	stop := a.keepInProgress(held)
	err := notify.Deliver(ctx, a.senders[name], m, notify.Retry(c.Retry), func(at notify.Attempt) {
		if at.Wait > 0 {
			a.m.retries.WithLabelValues(name).Inc()
			a.rt.Log.Warn("notification attempt failed, will retry", "channel", name, "id", m.ID, "attempt", at.N, "retry_in", at.Wait, "err", at.Err)
		}
	})
	stop()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	switch {
	case err == nil:
		for _, id := range m.ItemIDs {
			a.markDelivered(sctx, name, id)
		}
		for _, msg := range held {
			ack(msg)
		}
		a.m.sent.WithLabelValues(name, m.Type).Inc()
		a.rt.Log.Info("notification sent", "channel", name, "type", m.Type, "id", m.ID, "title", m.Title, "items", len(m.ItemIDs))
	case ctx.Err() != nil:
		// Stopping: hand the messages to another replica right away.
		for _, msg := range held {
			_ = msg.NakWithDelay(time.Second)
		}
	case notify.IsPermanent(err) && !misconfigured(err):
		a.m.failed.WithLabelValues(name, "rejected").Inc()
		a.rt.Log.Error("notification rejected by the channel; dropped", "channel", name, "type", m.Type, "id", m.ID, "title", m.Title, "err", err)
		for _, msg := range held {
			_ = msg.TermWithReason("rejected by channel " + name)
		}
	default:
		reason, delay := "gave_up", c.Retry.Max
		if misconfigured(err) {
			reason, delay = "misconfigured", 5*time.Minute
		}
		a.m.failed.WithLabelValues(name, reason).Inc()
		a.rt.Log.Error("notification not delivered; kept for a later try", "channel", name, "type", m.Type, "id", m.ID, "retry_in", delay, "err", err)
		for _, msg := range held {
			_ = msg.NakWithDelay(delay)
		}
	}
}

// misconfigured reports an answer that says the endpoint or its credentials
// are wrong: worth keeping the notification until someone fixes the policy.
func misconfigured(err error) bool {
	var h *notify.HTTPError
	if !errors.As(err, &h) {
		return false
	}
	switch h.Status {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusGone:
		return true
	}
	return false
}

// keepInProgress tells JetStream every third of the ack wait that msgs are
// still being worked on; the returned func stops it.
func (a *app) keepInProgress(msgs []jetstream.Msg) func() {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(a.cfg.NotifyAckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				for _, m := range msgs {
					_ = m.InProgress()
				}
			}
		}
	}()
	return func() { close(done) }
}

// markerKey is the delivery marker of item id on channel name.
func markerKey(name, id string) string { return "sent." + proto.Token(name) + "." + proto.Token(id) }

func (a *app) delivered(ctx context.Context, name, id string) bool {
	_, err := a.marks.Get(ctx, markerKey(name, id))
	return err == nil
}

func (a *app) markDelivered(ctx context.Context, name, id string) {
	if _, err := a.marks.Create(ctx, markerKey(name, id), []byte(a.now().UTC().Format(time.RFC3339Nano))); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
		a.rt.Log.Warn("record delivery", "channel", name, "id", id, "err", err)
	}
}

func ack(msg jetstream.Msg) { _ = msg.Ack() }

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func sortSources(s []state.Source) {
	sort.Slice(s, func(i, j int) bool {
		if s[i].Kind != s[j].Kind {
			return s[i].Kind < s[j].Kind
		}
		return s[i].Source < s[j].Source
	})
}

// Package nack turns the specs of NACK resources (jetstream.nats.io/v1beta2
// Stream, Consumer and KeyValue) into the JetStream configurations the NACK
// controller asks the server for, so that tests can create them on an
// embedded server and compare them with what the services create.
//
// The conversion is strict: a spec field it does not translate is an error,
// never silently dropped, so a test cannot pass while ignoring part of a
// manifest. Fields that only steer the controller (preventDelete,
// preventUpdate, servers, creds, nkey, tls, account, jsDomain) are accepted
// and ignored. Missing fields take the CRD's defaults, as the API server
// would fill them in.
package nack

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// controllerOnly are spec fields that configure the controller, not the
// JetStream asset.
var controllerOnly = map[string]bool{
	"preventDelete": true, "preventUpdate": true, "servers": true, "creds": true,
	"nkey": true, "tls": true, "tlsFirst": true, "account": true, "jsDomain": true,
}

// spec reads one resource's spec, remembering which fields it read (so
// that unread ones are errors) and every malformed value it met (so that a
// conversion reads on and reports them all at the end, in done).
type spec struct {
	kind string
	m    map[string]any
	used map[string]bool
	errs []error
}

func newSpec(kind string, m map[string]any) *spec {
	return &spec{kind: kind, m: m, used: map[string]bool{}}
}

func (s *spec) fail(key, format string, args ...any) {
	s.errs = append(s.errs, fmt.Errorf("%s spec.%s: %s", s.kind, key, fmt.Sprintf(format, args...)))
}

func (s *spec) str(key, def string) string {
	s.used[key] = true
	if v, ok := s.m[key].(string); ok {
		return v
	}
	return def
}

func (s *spec) num(key string, def int64) int64 {
	s.used[key] = true
	switch v := s.m[key].(type) {
	case nil:
		return def
	case float64:
		if v != float64(int64(v)) {
			s.fail(key, "%v is not a whole number", v)
		}
		return int64(v)
	case int64:
		return v
	case int:
		return int64(v)
	}
	s.fail(key, "%v is not a number", s.m[key])
	return 0
}

func (s *spec) flag(key string) bool {
	s.used[key] = true
	b, _ := s.m[key].(bool)
	return b
}

func (s *spec) strings(key string) []string {
	s.used[key] = true
	list, _ := s.m[key].([]any)
	var out []string
	for _, v := range list {
		if str, ok := v.(string); ok {
			out = append(out, str)
		}
	}
	return out
}

func (s *spec) duration(key string) time.Duration {
	return s.parseDuration(key, s.str(key, ""))
}

func (s *spec) parseDuration(key, v string) time.Duration {
	if v == "" {
		return 0
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		s.fail(key, "%v", err)
	}
	return d
}

// enum reads a string field that names one of values (def when absent).
func enum[T any](s *spec, key, def string, values map[string]T) T {
	v := s.str(key, def)
	t, ok := values[v]
	if !ok {
		s.errs = append(s.errs, fmt.Errorf("%s spec.%s %q is not one of %s", s.kind, key, v, strings.Join(slices.Sorted(maps.Keys(values)), ", ")))
	}
	return t
}

func (s *spec) metadata() map[string]string {
	s.used["metadata"] = true
	m, _ := s.m["metadata"].(map[string]any)
	if len(m) == 0 {
		return nil
	}
	out := map[string]string{}
	for k, v := range m {
		out[k] = fmt.Sprint(v)
	}
	return out
}

// done returns every malformed value met and the spec fields the
// conversion did not read.
func (s *spec) done() error {
	var left []string
	for k := range s.m {
		if !s.used[k] && !controllerOnly[k] {
			left = append(left, k)
		}
	}
	errs := s.errs
	if len(left) > 0 {
		sort.Strings(left)
		errs = append(errs, fmt.Errorf("%s spec fields not supported by this conversion: %s", s.kind, strings.Join(left, ", ")))
	}
	return errors.Join(errs...)
}

var storages = map[string]jetstream.StorageType{"file": jetstream.FileStorage, "memory": jetstream.MemoryStorage}

// Stream converts a Stream's spec.
func Stream(m map[string]any) (jetstream.StreamConfig, error) {
	s := newSpec("Stream", m)
	c := jetstream.StreamConfig{
		Name:        s.str("name", ""),
		Description: s.str("description", ""),
		Subjects:    s.strings("subjects"),
		Retention: enum(s, "retention", "limits", map[string]jetstream.RetentionPolicy{
			"limits": jetstream.LimitsPolicy, "interest": jetstream.InterestPolicy, "workqueue": jetstream.WorkQueuePolicy}),
		Storage: enum(s, "storage", "memory", storages),
		Discard: enum(s, "discard", "old", map[string]jetstream.DiscardPolicy{"old": jetstream.DiscardOld, "new": jetstream.DiscardNew}),
		Compression: enum(s, "compression", "", map[string]jetstream.StoreCompression{
			"": jetstream.NoCompression, "none": jetstream.NoCompression, "s2": jetstream.S2Compression}),
		MaxConsumers:         int(s.num("maxConsumers", -1)),
		MaxMsgs:              s.num("maxMsgs", -1),
		MaxBytes:             s.num("maxBytes", -1),
		MaxMsgsPerSubject:    s.num("maxMsgsPerSubject", 0),
		MaxMsgSize:           int32(s.num("maxMsgSize", -1)),
		Replicas:             int(s.num("replicas", 1)),
		MaxAge:               s.duration("maxAge"),
		Duplicates:           s.duration("duplicateWindow"),
		DiscardNewPerSubject: s.flag("discardPerSubject"),
		NoAck:                s.flag("noAck"),
		Sealed:               s.flag("sealed"),
		DenyDelete:           s.flag("denyDelete"),
		DenyPurge:            s.flag("denyPurge"),
		AllowRollup:          s.flag("allowRollup"),
		AllowDirect:          s.flag("allowDirect"),
		MirrorDirect:         s.flag("mirrorDirect"),
		AllowMsgTTL:          s.flag("allowMsgTtl"),
		Metadata:             s.metadata(),
	}
	if m, ok := s.m["mirror"].(map[string]any); ok {
		s.used["mirror"] = true
		src, err := source(m)
		if err != nil {
			s.errs = append(s.errs, err)
		}
		c.Mirror = src
	}
	return c, s.done()
}

// source converts a mirror: the stream's name and, across accounts or
// domains, the external API and deliver prefixes.
func source(m map[string]any) (*jetstream.StreamSource, error) {
	s := newSpec("Stream mirror", m)
	src := &jetstream.StreamSource{Name: s.str("name", "")}
	api, deliver := s.str("externalApiPrefix", ""), s.str("externalDeliverPrefix", "")
	if api != "" || deliver != "" {
		src.External = &jetstream.ExternalStream{APIPrefix: api, DeliverPrefix: deliver}
	}
	return src, s.done()
}

// Consumer converts a Consumer's spec and returns the stream it belongs to.
func Consumer(m map[string]any) (string, jetstream.ConsumerConfig, error) {
	s := newSpec("Consumer", m)
	stream := s.str("streamName", "")
	c := jetstream.ConsumerConfig{
		Durable:     s.str("durableName", ""),
		Description: s.str("description", ""),
		DeliverPolicy: enum(s, "deliverPolicy", "all", map[string]jetstream.DeliverPolicy{
			"all": jetstream.DeliverAllPolicy, "last": jetstream.DeliverLastPolicy, "new": jetstream.DeliverNewPolicy,
			"lastPerSubject": jetstream.DeliverLastPerSubjectPolicy, "byStartSequence": jetstream.DeliverByStartSequencePolicy,
			"byStartTime": jetstream.DeliverByStartTimePolicy}),
		AckPolicy: enum(s, "ackPolicy", "none", map[string]jetstream.AckPolicy{
			"none": jetstream.AckNonePolicy, "all": jetstream.AckAllPolicy, "explicit": jetstream.AckExplicitPolicy}),
		ReplayPolicy: enum(s, "replayPolicy", "instant", map[string]jetstream.ReplayPolicy{
			"instant": jetstream.ReplayInstantPolicy, "original": jetstream.ReplayOriginalPolicy}),
		AckWait:            s.duration("ackWait"),
		MaxDeliver:         int(s.num("maxDeliver", 0)),
		MaxAckPending:      int(s.num("maxAckPending", 0)),
		MaxWaiting:         int(s.num("maxWaiting", 0)),
		MaxRequestBatch:    int(s.num("maxRequestBatch", 0)),
		MaxRequestMaxBytes: int(s.num("maxRequestMaxBytes", 0)),
		MaxRequestExpires:  s.duration("maxRequestExpires"),
		InactiveThreshold:  s.duration("inactiveThreshold"),
		Replicas:           int(s.num("replicas", 0)),
		FilterSubject:      s.str("filterSubject", ""),
		FilterSubjects:     s.strings("filterSubjects"),
		HeadersOnly:        s.flag("headersOnly"),
		MemoryStorage:      s.flag("memStorage"),
		Metadata:           s.metadata(),
	}
	switch c.DeliverPolicy {
	case jetstream.DeliverByStartSequencePolicy:
		c.OptStartSeq = uint64(s.num("optStartSeq", 0))
	case jetstream.DeliverByStartTimePolicy:
		t, err := time.Parse(time.RFC3339, s.str("optStartTime", ""))
		if err != nil {
			s.fail("optStartTime", "%v", err)
		}
		c.OptStartTime = &t
	}
	for _, b := range s.strings("backoff") {
		c.BackOff = append(c.BackOff, s.parseDuration("backoff", b))
	}
	for _, push := range []string{"deliverSubject", "deliverGroup", "flowControl", "heartbeatInterval", "rateLimitBps"} {
		if _, set := m[push]; set {
			s.used[push] = true
			s.fail(push, "push consumers are not supported by this conversion")
		}
	}
	return stream, c, s.done()
}

// KeyValue converts a KeyValue's spec.
func KeyValue(m map[string]any) (jetstream.KeyValueConfig, error) {
	s := newSpec("KeyValue", m)
	c := jetstream.KeyValueConfig{
		Bucket:       s.str("bucket", ""),
		Description:  s.str("description", ""),
		MaxValueSize: int32(s.num("maxValueSize", 0)),
		History:      uint8(s.num("history", 0)),
		TTL:          s.duration("ttl"),
		MaxBytes:     s.num("maxBytes", 0),
		Storage:      enum(s, "storage", "file", storages),
		Replicas:     int(s.num("replicas", 1)),
		Compression:  s.flag("compression"),
	}
	return c, s.done()
}

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
	"fmt"
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

type spec struct {
	kind string
	m    map[string]any
	used map[string]bool
}

func newSpec(kind string, m map[string]any) *spec {
	return &spec{kind: kind, m: m, used: map[string]bool{}}
}

func (s *spec) str(key, def string) string {
	s.used[key] = true
	if v, ok := s.m[key].(string); ok {
		return v
	}
	return def
}

func (s *spec) num(key string, def int64) (int64, error) {
	s.used[key] = true
	switch v := s.m[key].(type) {
	case nil:
		return def, nil
	case float64:
		if v != float64(int64(v)) {
			return 0, fmt.Errorf("%s spec.%s: %v is not a whole number", s.kind, key, v)
		}
		return int64(v), nil
	case int64:
		return v, nil
	case int:
		return int64(v), nil
	}
	return 0, fmt.Errorf("%s spec.%s: %v is not a number", s.kind, key, s.m[key])
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

func (s *spec) duration(key string) (time.Duration, error) {
	v := s.str(key, "")
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%s spec.%s: %w", s.kind, key, err)
	}
	return d, nil
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

// unused reports spec fields the conversion did not read.
func (s *spec) unused() error {
	var left []string
	for k := range s.m {
		if !s.used[k] && !controllerOnly[k] {
			left = append(left, k)
		}
	}
	if len(left) == 0 {
		return nil
	}
	sort.Strings(left)
	return fmt.Errorf("%s spec fields not supported by this conversion: %s", s.kind, strings.Join(left, ", "))
}

// Stream converts a Stream's spec.
func Stream(m map[string]any) (jetstream.StreamConfig, error) {
	s := newSpec("Stream", m)
	var c jetstream.StreamConfig
	var err error
	c.Name = s.str("name", "")
	c.Description = s.str("description", "")
	c.Subjects = s.strings("subjects")
	switch r := s.str("retention", "limits"); r {
	case "limits":
		c.Retention = jetstream.LimitsPolicy
	case "interest":
		c.Retention = jetstream.InterestPolicy
	case "workqueue":
		c.Retention = jetstream.WorkQueuePolicy
	default:
		return c, fmt.Errorf("Stream spec.retention %q", r)
	}
	switch st := s.str("storage", "memory"); st {
	case "file":
		c.Storage = jetstream.FileStorage
	case "memory":
		c.Storage = jetstream.MemoryStorage
	default:
		return c, fmt.Errorf("Stream spec.storage %q", st)
	}
	switch d := s.str("discard", "old"); d {
	case "old":
		c.Discard = jetstream.DiscardOld
	case "new":
		c.Discard = jetstream.DiscardNew
	default:
		return c, fmt.Errorf("Stream spec.discard %q", d)
	}
	switch comp := s.str("compression", ""); comp {
	case "", "none":
		c.Compression = jetstream.NoCompression
	case "s2":
		c.Compression = jetstream.S2Compression
	default:
		return c, fmt.Errorf("Stream spec.compression %q", comp)
	}
	var n int64
	if n, err = s.num("maxConsumers", -1); err != nil {
		return c, err
	}
	c.MaxConsumers = int(n)
	if c.MaxMsgs, err = s.num("maxMsgs", -1); err != nil {
		return c, err
	}
	if c.MaxBytes, err = s.num("maxBytes", -1); err != nil {
		return c, err
	}
	if c.MaxMsgsPerSubject, err = s.num("maxMsgsPerSubject", 0); err != nil {
		return c, err
	}
	if n, err = s.num("maxMsgSize", -1); err != nil {
		return c, err
	}
	c.MaxMsgSize = int32(n)
	if n, err = s.num("replicas", 1); err != nil {
		return c, err
	}
	c.Replicas = int(n)
	if c.MaxAge, err = s.duration("maxAge"); err != nil {
		return c, err
	}
	if c.Duplicates, err = s.duration("duplicateWindow"); err != nil {
		return c, err
	}
	c.DiscardNewPerSubject = s.flag("discardPerSubject")
	c.NoAck = s.flag("noAck")
	c.Sealed = s.flag("sealed")
	c.DenyDelete = s.flag("denyDelete")
	c.DenyPurge = s.flag("denyPurge")
	c.AllowRollup = s.flag("allowRollup")
	c.AllowDirect = s.flag("allowDirect")
	c.MirrorDirect = s.flag("mirrorDirect")
	c.AllowMsgTTL = s.flag("allowMsgTtl")
	c.Metadata = s.metadata()
	if m, ok := s.m["mirror"].(map[string]any); ok {
		s.used["mirror"] = true
		src, err := source(m)
		if err != nil {
			return c, err
		}
		c.Mirror = src
	}
	return c, s.unused()
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
	return src, s.unused()
}

// Consumer converts a Consumer's spec and returns the stream it belongs to.
func Consumer(m map[string]any) (string, jetstream.ConsumerConfig, error) {
	s := newSpec("Consumer", m)
	var c jetstream.ConsumerConfig
	var err error
	stream := s.str("streamName", "")
	c.Durable = s.str("durableName", "")
	c.Description = s.str("description", "")
	switch p := s.str("deliverPolicy", "all"); p {
	case "all":
		c.DeliverPolicy = jetstream.DeliverAllPolicy
	case "last":
		c.DeliverPolicy = jetstream.DeliverLastPolicy
	case "new":
		c.DeliverPolicy = jetstream.DeliverNewPolicy
	case "lastPerSubject":
		c.DeliverPolicy = jetstream.DeliverLastPerSubjectPolicy
	case "byStartSequence":
		c.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		n, err := s.num("optStartSeq", 0)
		if err != nil {
			return stream, c, err
		}
		c.OptStartSeq = uint64(n)
	case "byStartTime":
		c.DeliverPolicy = jetstream.DeliverByStartTimePolicy
		t, err := time.Parse(time.RFC3339, s.str("optStartTime", ""))
		if err != nil {
			return stream, c, fmt.Errorf("Consumer spec.optStartTime: %w", err)
		}
		c.OptStartTime = &t
	default:
		return stream, c, fmt.Errorf("Consumer spec.deliverPolicy %q", p)
	}
	switch p := s.str("ackPolicy", "none"); p {
	case "none":
		c.AckPolicy = jetstream.AckNonePolicy
	case "all":
		c.AckPolicy = jetstream.AckAllPolicy
	case "explicit":
		c.AckPolicy = jetstream.AckExplicitPolicy
	default:
		return stream, c, fmt.Errorf("Consumer spec.ackPolicy %q", p)
	}
	switch p := s.str("replayPolicy", "instant"); p {
	case "instant":
		c.ReplayPolicy = jetstream.ReplayInstantPolicy
	case "original":
		c.ReplayPolicy = jetstream.ReplayOriginalPolicy
	default:
		return stream, c, fmt.Errorf("Consumer spec.replayPolicy %q", p)
	}
	if c.AckWait, err = s.duration("ackWait"); err != nil {
		return stream, c, err
	}
	var n int64
	if n, err = s.num("maxDeliver", 0); err != nil {
		return stream, c, err
	}
	c.MaxDeliver = int(n)
	if n, err = s.num("maxAckPending", 0); err != nil {
		return stream, c, err
	}
	c.MaxAckPending = int(n)
	if n, err = s.num("maxWaiting", 0); err != nil {
		return stream, c, err
	}
	c.MaxWaiting = int(n)
	if n, err = s.num("maxRequestBatch", 0); err != nil {
		return stream, c, err
	}
	c.MaxRequestBatch = int(n)
	if n, err = s.num("maxRequestMaxBytes", 0); err != nil {
		return stream, c, err
	}
	c.MaxRequestMaxBytes = int(n)
	if c.MaxRequestExpires, err = s.duration("maxRequestExpires"); err != nil {
		return stream, c, err
	}
	if c.InactiveThreshold, err = s.duration("inactiveThreshold"); err != nil {
		return stream, c, err
	}
	if n, err = s.num("replicas", 0); err != nil {
		return stream, c, err
	}
	c.Replicas = int(n)
	for _, b := range s.strings("backoff") {
		d, err := time.ParseDuration(b)
		if err != nil {
			return stream, c, fmt.Errorf("Consumer spec.backoff: %w", err)
		}
		c.BackOff = append(c.BackOff, d)
	}
	c.FilterSubject = s.str("filterSubject", "")
	c.FilterSubjects = s.strings("filterSubjects")
	c.HeadersOnly = s.flag("headersOnly")
	c.MemoryStorage = s.flag("memStorage")
	c.Metadata = s.metadata()
	for _, push := range []string{"deliverSubject", "deliverGroup", "flowControl", "heartbeatInterval", "rateLimitBps"} {
		if _, set := m[push]; set {
			return stream, c, fmt.Errorf("Consumer spec.%s: push consumers are not supported by this conversion", push)
		}
	}
	return stream, c, s.unused()
}

// KeyValue converts a KeyValue's spec.
func KeyValue(m map[string]any) (jetstream.KeyValueConfig, error) {
	s := newSpec("KeyValue", m)
	var c jetstream.KeyValueConfig
	var err error
	c.Bucket = s.str("bucket", "")
	c.Description = s.str("description", "")
	var n int64
	if n, err = s.num("maxValueSize", 0); err != nil {
		return c, err
	}
	c.MaxValueSize = int32(n)
	if n, err = s.num("history", 0); err != nil {
		return c, err
	}
	c.History = uint8(n)
	if c.TTL, err = s.duration("ttl"); err != nil {
		return c, err
	}
	if c.MaxBytes, err = s.num("maxBytes", 0); err != nil {
		return c, err
	}
	switch st := s.str("storage", "file"); st {
	case "file":
		c.Storage = jetstream.FileStorage
	case "memory":
		c.Storage = jetstream.MemoryStorage
	default:
		return c, fmt.Errorf("KeyValue spec.storage %q", st)
	}
	if n, err = s.num("replicas", 1); err != nil {
		return c, err
	}
	c.Replicas = int(n)
	c.Compression = s.flag("compression")
	return c, s.unused()
}

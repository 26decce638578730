// Package apisource reads business records (orders, tickets, payments) from
// HTTP APIs declared in YAML: one time window at a time, walking the pages
// in the declared pagination style, with the declared authentication, rate
// limit, timeouts and retries (429 and 5xx with backoff, honouring
// Retry-After). Every record becomes a proto.RawRecord keyed by its natural
// key; a record without its key is dead-lettered with its bytes. A Source
// implements extract.Source, so the live loop and backfills run it alike.
package apisource

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"text/template"
	"time"

	"github.com/segmentio/encoding/json"
	"golang.org/x/time/rate"

	"github.com/punchflow/punchflow/proto"
	"github.com/punchflow/punchflow/services/collector/internal/extract"
)

// Source is one HTTP API source. It is safe for concurrent use: windows may
// be extracted in parallel, sharing the rate limit.
type Source struct {
	cfg      Config
	base     *url.URL
	query    map[string]*template.Template
	client   *http.Client
	decorate func(*http.Request)
	limiter  *rate.Limiter
	log      *slog.Logger

	keyPaths [][]string
	timePath []string

	requests, pages, retried, throttled atomic.Int64
}

// Counters are a source's request counters since New.
type Counters struct {
	// Requests counts HTTP requests sent (retries included), Pages the
	// pages read, Retried the requests retried, Throttled the 429 answers.
	Requests, Pages, Retried, Throttled int64
}

// New validates cfg, resolves its secrets through getenv (and files), and
// returns the source. transport, when not nil, replaces the default HTTP
// transport (tests, benchmarks).
func New(cfg Config, getenv func(string) string, transport http.RoundTripper, log *slog.Logger) (*Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	base, err := url.Parse(cfg.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("api source %q: base_url: %w", cfg.Name, err)
	}
	if cfg.Path != "" {
		base.Path = strings.TrimRight(base.Path, "/") + "/" + strings.TrimLeft(cfg.Path, "/")
		base.RawPath = ""
	}
	if transport == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 64
		transport = t
	}
	s := &Source{cfg: cfg, base: base, query: make(map[string]*template.Template), log: log.With("source", cfg.Name)}
	s.client = &http.Client{Timeout: cfg.Timeout, Transport: countingTransport{next: transport, n: &s.requests}}
	for k, v := range cfg.Query {
		s.query[k], _ = parseTemplate(k, v) // Validate parsed it
	}
	s.client, s.decorate, err = authenticate(&s.cfg, s.client, getenv)
	if err != nil {
		return nil, fmt.Errorf("api source %q: %w", cfg.Name, err)
	}
	limit := rate.Inf
	if cfg.RateLimit > 0 {
		limit = rate.Limit(cfg.RateLimit)
	}
	s.limiter = rate.NewLimiter(limit, cfg.Burst)
	for _, f := range cfg.KeyFields {
		s.keyPaths = append(s.keyPaths, splitPath(f))
	}
	s.timePath = splitPath(cfg.TimeField)
	return s, nil
}

type countingTransport struct {
	next http.RoundTripper
	n    *atomic.Int64
}

func (t countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	t.n.Add(1)
	return t.next.RoundTrip(r)
}

// Name is the source's name.
func (s *Source) Name() string { return s.cfg.Name }

// Kind is "api".
func (s *Source) Kind() string { return "api" }

// Address is the first page's URL without query or credentials.
func (s *Source) Address() string {
	u := *s.base
	u.User, u.RawQuery = nil, ""
	return u.String()
}

// Counters returns the request counters.
func (s *Source) Counters() Counters {
	return Counters{Requests: s.requests.Load(), Pages: s.pages.Load(), Retried: s.retried.Load(), Throttled: s.throttled.Load()}
}

// firstURL renders the query templates for w.
func (s *Source) firstURL(w extract.Window) (url.Values, error) {
	q := s.base.Query()
	data := templateData{From: w.From, To: w.To, Last: w.To.Add(-time.Second)}
	var b strings.Builder
	for k, t := range s.query {
		b.Reset()
		if err := t.Execute(&b, data); err != nil {
			return nil, fmt.Errorf("api source %q: query %s: %w", s.cfg.Name, k, err)
		}
		q.Set(k, b.String())
	}
	return q, nil
}

func (s *Source) urlWith(q url.Values) string {
	u := *s.base
	u.RawQuery = q.Encode()
	return u.String()
}

// Extract reads every page of window w and sends each record to sink. A
// page that is not what the configuration describes is asked for again
// (retry.malformed times) and then fails the window with an error naming
// the URL and the window.
func (s *Source) Extract(ctx context.Context, w extract.Window, sink extract.Sink) error {
	q, err := s.firstURL(w)
	if err != nil {
		return err
	}
	p := s.cfg.Pagination
	page, offset := *p.FirstPage, 0
	switch p.Style {
	case StylePage, StyleLink:
		q.Set(p.SizeParam, strconv.Itoa(p.Size))
		if p.Style == StylePage {
			q.Set(p.PageParam, strconv.Itoa(page))
		}
	case StyleOffset:
		q.Set(p.SizeParam, strconv.Itoa(p.Size))
		q.Set(p.OffsetParam, "0")
	case StyleCursor:
		q.Set(p.SizeParam, strconv.Itoa(p.Size))
	}
	u := s.urlWith(q)
	for n := 1; ; n++ {
		if n > s.cfg.MaxPages {
			return fmt.Errorf("api source %q window %s: more than max_pages %d pages (last %s)", s.cfg.Name, w, s.cfg.MaxPages, u)
		}
		pg, err := s.page(ctx, u, w)
		if err != nil {
			return err
		}
		s.pages.Add(1)
		for i, raw := range pg.records {
			rec, reason := s.record(raw)
			if reason != "" {
				if err := sink.Reject(ctx, extract.Reject{Body: raw, Reason: reason, Where: u, Index: i + 1}); err != nil {
					return err
				}
				continue
			}
			if err := sink.Record(ctx, rec); err != nil {
				return err
			}
		}
		next := ""
		switch p.Style {
		case StylePage:
			if len(pg.records) >= p.Size {
				page++
				q.Set(p.PageParam, strconv.Itoa(page))
				next = s.urlWith(q)
			}
		case StyleOffset:
			if len(pg.records) >= p.Size {
				offset += p.Size
				q.Set(p.OffsetParam, strconv.Itoa(offset))
				next = s.urlWith(q)
			}
		case StyleCursor:
			if pg.next != "" {
				if strings.HasPrefix(pg.next, "http://") || strings.HasPrefix(pg.next, "https://") {
					next, err = s.sameOrigin(u, pg.next)
					if err != nil {
						return fmt.Errorf("api source %q window %s: %w", s.cfg.Name, w, err)
					}
				} else {
					q.Set(p.CursorParam, pg.next)
					next = s.urlWith(q)
				}
			}
		case StyleLink:
			if pg.link != "" {
				next, err = s.sameOrigin(u, pg.link)
				if err != nil {
					return fmt.Errorf("api source %q window %s: %w", s.cfg.Name, w, err)
				}
			}
		}
		if next == "" {
			return nil
		}
		if next == u {
			return fmt.Errorf("%w: api source %q window %s: the page after %s is the same page; the API does not advance", extract.ErrMalformed, s.cfg.Name, w, u)
		}
		u = next
	}
}

// sameOrigin resolves a next-page reference against the current page and
// refuses one on another origin: credentials are not sent elsewhere.
func (s *Source) sameOrigin(cur, ref string) (string, error) {
	c, err := url.Parse(cur)
	if err != nil {
		return "", err
	}
	r, err := url.Parse(ref)
	if err != nil {
		return "", fmt.Errorf("next page %q is not a URL: %v", ref, err)
	}
	n := c.ResolveReference(r)
	if n.Scheme != s.base.Scheme || n.Host != s.base.Host {
		return "", fmt.Errorf("next page %s is not on %s://%s; refusing to send credentials there", n, s.base.Scheme, s.base.Host)
	}
	return n.String(), nil
}

type pageData struct {
	records []json.RawMessage
	next    string // cursor style: the value at NextPath
	link    string // link style: the rel="next" target
}

// page fetches and parses one page, asking again for a malformed one.
func (s *Source) page(ctx context.Context, u string, w extract.Window) (pageData, error) {
	for attempt := 0; ; attempt++ {
		body, header, err := s.get(ctx, u)
		if err != nil {
			return pageData{}, fmt.Errorf("api source %q window %s: %w", s.cfg.Name, w, err)
		}
		pg, err := s.parse(body, header)
		if err == nil {
			return pg, nil
		}
		err = fmt.Errorf("%w: api source %q window %s: page %s: %v", extract.ErrMalformed, s.cfg.Name, w, u, err)
		if attempt >= s.cfg.Retry.Malformed {
			return pageData{}, err
		}
		s.retried.Add(1)
		s.log.Warn("malformed page, asking again", "url", u, "window", w.String(), "err", err)
	}
}

// parse finds the records (and the next cursor or link) in a page.
func (s *Source) parse(body []byte, header http.Header) (pageData, error) {
	var pg pageData
	if !json.Valid(body) {
		return pg, fmt.Errorf("body is not valid JSON (%d bytes: %s)", len(body), snippet(body))
	}
	path := splitPath(s.cfg.RecordsPath)
	arr, ok, err := lookup(body, path)
	if err != nil {
		return pg, err
	}
	if !ok {
		return pg, fmt.Errorf("records_path %q is not in the body (%s)", s.cfg.RecordsPath, snippet(body))
	}
	if len(arr) == 0 || arr[0] != '[' {
		if isNull(arr) {
			arr = []byte("[]") // "no records" as null
		} else {
			return pg, fmt.Errorf("records_path %q is not an array (%s)", s.cfg.RecordsPath, snippet(arr))
		}
	}
	elems, err := elements(arr)
	if err != nil {
		return pg, fmt.Errorf("records_path %q: %v", s.cfg.RecordsPath, err)
	}
	pg.records = make([]json.RawMessage, len(elems))
	for i, e := range elems {
		pg.records[i] = e
	}
	switch s.cfg.Pagination.Style {
	case StyleCursor:
		v, ok, err := lookup(body, splitPath(s.cfg.Pagination.NextPath))
		if err != nil {
			return pg, err
		}
		if ok && !isNull(v) {
			var tok string
			if err := json.Unmarshal(v, &tok); err != nil {
				// A numeric cursor is sent back as its text.
				tok = string(bytes.TrimSpace(v))
			}
			pg.next = tok
		}
	case StyleLink:
		pg.link = nextLink(header.Values("Link"))
	}
	return pg, nil
}

// record turns one raw record into a RawRecord, or returns why it cannot.
func (s *Source) record(raw json.RawMessage) (proto.RawRecord, string) {
	// The page was valid JSON, so the record is; the payload may share the
	// page's bytes (it is encoded into its message at once).
	payload := compact(raw)
	if len(payload) == 0 || payload[0] != '{' {
		return proto.RawRecord{}, "record is not a JSON object"
	}
	keys := make([]string, 0, len(s.keyPaths))
	for i, p := range s.keyPaths {
		v, ok, err := lookup(payload, p)
		if err != nil || !ok || isNull(v) {
			return proto.RawRecord{}, fmt.Sprintf("record has no key field %q", s.cfg.KeyFields[i])
		}
		k, ok := scalarText(v)
		if !ok || k == "" {
			return proto.RawRecord{}, fmt.Sprintf("key field %q is %s, not a string or number", s.cfg.KeyFields[i], snippet(v))
		}
		keys = append(keys, k)
	}
	r := proto.RawRecord{NaturalKey: strings.Join(keys, "|"), Payload: payload}
	if len(s.timePath) > 0 {
		if v, ok, err := lookup(payload, s.timePath); err == nil && ok && !isNull(v) {
			if t, err := parseTime(v, s.cfg.TimeLayout); err == nil {
				r.ObservedAt = &t
			} else {
				s.log.Debug("record time not readable", "field", s.cfg.TimeField, "err", err)
			}
		}
	}
	return r, ""
}

// parseTime reads a timestamp in one of the configured layouts.
func parseTime(v json.RawMessage, layout string) (time.Time, error) {
	text, ok := scalarText(v)
	if !ok {
		return time.Time{}, fmt.Errorf("%s is not a time", snippet(v))
	}
	switch layout {
	case "rfc3339":
		return time.Parse(time.RFC3339Nano, text)
	case "unix", "unix_ms":
		f, err := strconv.ParseFloat(text, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("%q is not a number: %v", text, err)
		}
		if layout == "unix" {
			return time.UnixMilli(int64(f * 1000)).UTC(), nil
		}
		return time.UnixMilli(int64(f)).UTC(), nil
	}
	return time.ParseInLocation(layout, text, time.UTC)
}

// splitPath splits a dotted path; "" is the empty path (the value itself).
func splitPath(p string) []string {
	if strings.TrimSpace(p) == "" {
		return nil
	}
	return strings.Split(p, ".")
}

// lookup follows a dotted path of object keys (or array indexes) into v,
// which must be valid JSON.
func lookup(v []byte, path []string) (json.RawMessage, bool, error) {
	cur := bytes.TrimSpace(v)
	for _, k := range path {
		if len(cur) == 0 {
			return nil, false, nil
		}
		switch cur[0] {
		case '{':
			next, ok, err := field(cur, k)
			if err != nil || !ok {
				return nil, false, err
			}
			cur = next
		case '[':
			i, err := strconv.Atoi(k)
			if err != nil {
				return nil, false, nil
			}
			a, err := elements(cur)
			if err != nil {
				return nil, false, err
			}
			if i < 0 || i >= len(a) {
				return nil, false, nil
			}
			cur = a[i]
		default:
			return nil, false, nil
		}
	}
	return cur, true, nil
}

func isNull(v []byte) bool { return string(bytes.TrimSpace(v)) == "null" }

// scalarText renders a JSON string (unquoted), number or boolean as text.
func scalarText(v json.RawMessage) (string, bool) {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return "", false
	}
	switch v[0] {
	case '"':
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return "", false
		}
		return s, true
	case '{', '[', 'n':
		return "", false
	}
	return string(v), true
}

// nextLink returns the target of the rel="next" link in Link header values
// (RFC 8288), or "".
func nextLink(values []string) string {
	for _, v := range values {
		for _, part := range splitLinks(v) {
			part = strings.TrimSpace(part)
			if !strings.HasPrefix(part, "<") {
				continue
			}
			end := strings.Index(part, ">")
			if end < 0 {
				continue
			}
			target := part[1:end]
			for _, param := range strings.Split(part[end+1:], ";") {
				k, val, ok := strings.Cut(strings.TrimSpace(param), "=")
				if !ok || !strings.EqualFold(strings.TrimSpace(k), "rel") {
					continue
				}
				for _, rel := range strings.Fields(strings.Trim(strings.TrimSpace(val), `"`)) {
					if strings.EqualFold(rel, "next") {
						return target
					}
				}
			}
		}
	}
	return ""
}

// splitLinks splits a Link header value at the commas between links (not
// the ones inside <…> or quotes).
func splitLinks(v string) []string {
	var out []string
	inURL, inQuote, start := false, false, 0
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '<' && !inQuote:
			inURL = true
		case c == '>' && !inQuote:
			inURL = false
		case c == '"' && !inURL:
			inQuote = !inQuote
		case c == ',' && !inURL && !inQuote:
			out = append(out, v[start:i])
			start = i + 1
		}
	}
	return append(out, v[start:])
}

var _ extract.Source = (*Source)(nil)

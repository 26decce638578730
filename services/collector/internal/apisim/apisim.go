// Package apisim simulates the business APIs the collector reads (orders,
// tickets, payments) over HTTP, for tests, the demo and benchmarks. Every
// dataset is deterministic from a seed, with timestamps spread over a date
// range, and is served in the four pagination styles the collector supports:
//
//	GET /page/<dataset>?from=&to=&page=&per_page=   body {"data":{"items":[…]},"meta":{"page","per_page","total","pages"}}
//	GET /offset/<dataset>?from=&to=&skip=&count=    body {"results":[…],"total":N}
//	GET /cursor/<dataset>?from=&to=&cursor=&limit=  body {"data":[…],"next_cursor":"…"} ("" on the last page)
//	GET /link/<dataset>?from=&to=&page=&per_page=   body […], Link: <…>; rel="next" while more follow
//
// from and to are RFC 3339 times; the records with from ≤ time < to are
// served in time order. POST /oauth/token grants client-credentials tokens.
// Faults (429 with Retry-After, rate limiting, 500, slow answers, malformed
// JSON, records repeated across pages) are injected by probability or
// scripted for the next requests (Inject).
package apisim

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Auth is what the simulator demands from clients. Every non-empty field
// is accepted; when all are empty, no authentication is required.
type Auth struct {
	// Bearer is a static token expected as "Authorization: Bearer <token>".
	Bearer string
	// BasicUser and BasicPassword are expected as HTTP basic auth.
	BasicUser, BasicPassword string
	// APIKeyHeader and APIKey: the key expected in that header.
	APIKeyHeader, APIKey string
	// ClientID and ClientSecret are the OAuth2 client credentials POST
	// /oauth/token accepts; the tokens it grants live TokenTTL (default
	// 1 h) and are accepted as bearer tokens.
	ClientID, ClientSecret string
	TokenTTL               time.Duration
}

func (a Auth) any() bool {
	return a.Bearer != "" || a.BasicUser != "" || a.APIKey != "" || a.ClientID != ""
}

// Faults are injected failures. Probabilities are per request, from 0 to 1.
type Faults struct {
	// TooMany answers 429 with a Retry-After of RetryAfter.
	TooMany float64
	// RetryAfter is the Retry-After of every 429 (default 1 s). It is
	// written in whole seconds, or with a decimal fraction when it has one
	// (the collector accepts both; a real API sends whole seconds or a date).
	RetryAfter time.Duration
	// RateLimit, when positive, allows this many requests per second, with
	// bursts of RateBurst (default 1), and answers 429 with the time until
	// the next free slot as Retry-After beyond it.
	RateLimit float64
	RateBurst int
	// ServerError answers 500.
	ServerError float64
	// Malformed answers 200 with a JSON body cut in the middle.
	Malformed float64
	// Duplicates makes a page (not the first) start with the last record
	// of the page before it, as offset pagination over changing data does.
	Duplicates float64
	// Latency delays every answer ("slow"); PerRecord adds this much per
	// record served; Jitter varies both by up to this fraction (0–1).
	Latency   time.Duration
	PerRecord time.Duration
	Jitter    float64
}

// Config describes a simulator. Zero values select the defaults named.
type Config struct {
	// Seed makes the data (and the random faults) reproducible.
	Seed uint64
	// From and To bound the records' timestamps (default the 30 days of
	// 2025-08-01 to 2025-08-31 inclusive, UTC).
	From, To time.Time
	// Records is the number of records of each dataset (default 10,000).
	Records int
	// MaxPageSize caps the page size a client may ask for (default 1,000).
	MaxPageSize int
	Auth        Auth
	Faults      Faults
}

// FaultKind names a scripted fault for Inject.
type FaultKind int

// Scripted faults.
const (
	FaultTooMany FaultKind = iota + 1
	FaultServerError
	FaultMalformed
	FaultDuplicate
	// FaultServiceUnavailable answers 503 without Retry-After.
	FaultServiceUnavailable
)

// Stats counts what the simulator answered.
type Stats struct {
	Requests int
	// Status counts answers by HTTP status code.
	Status map[int]int
	// Records counts records served in 200 answers (duplicates included).
	Records int
	// Tokens counts OAuth2 tokens granted.
	Tokens int
}

// Server is a running simulator. It is safe for concurrent use.
type Server struct {
	cfg  Config
	data map[Dataset]*data

	mu       sync.Mutex
	faults   Faults
	rng      *rand.Rand
	script   []FaultKind
	stats    Stats
	tokens   map[string]time.Time
	nextSlot time.Time // rate limiter: the earliest time the next request is allowed

	srv *http.Server
	ln  net.Listener
}

// New returns a simulator; serve it with Handler, or Start it.
func New(cfg Config) (*Server, error) {
	if cfg.From.IsZero() && cfg.To.IsZero() {
		cfg.From = time.Date(2025, 8, 1, 0, 0, 0, 0, time.UTC)
		cfg.To = cfg.From.AddDate(0, 0, 31)
	}
	if !cfg.To.After(cfg.From) {
		return nil, fmt.Errorf("apisim: to %s must be after from %s", cfg.To, cfg.From)
	}
	if cfg.Records == 0 {
		cfg.Records = 10000
	}
	if cfg.Records < 0 {
		return nil, fmt.Errorf("apisim: records %d must be positive", cfg.Records)
	}
	if cfg.MaxPageSize <= 0 {
		cfg.MaxPageSize = 1000
	}
	if cfg.Auth.TokenTTL <= 0 {
		cfg.Auth.TokenTTL = time.Hour
	}
	s := &Server{
		cfg: cfg, data: make(map[Dataset]*data), faults: cfg.Faults,
		rng: rand.New(rand.NewPCG(cfg.Seed, 0x5eed)), tokens: make(map[string]time.Time),
		stats: Stats{Status: make(map[int]int)},
	}
	for _, ds := range Datasets {
		s.data[ds] = &data{ds: ds, seed: cfg.Seed, n: cfg.Records, from: cfg.From.UTC(), to: cfg.To.UTC()}
	}
	return s, nil
}

// Start serves the simulator on addr ("127.0.0.1:0" picks a port) until
// Close.
func Start(cfg Config, addr string) (*Server, error) {
	s, err := New(cfg)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("apisim: listen on %s: %w", addr, err)
	}
	s.ln = ln
	s.srv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// URL is the base URL of a started simulator, e.g. http://127.0.0.1:41234.
func (s *Server) URL() string {
	if s.ln == nil {
		return ""
	}
	return "http://" + s.ln.Addr().String()
}

// Close stops a started simulator.
func (s *Server) Close() error {
	if s.srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.srv.Shutdown(ctx)
}

// Config is the simulator's configuration with defaults applied.
func (s *Server) Config() Config { return s.cfg }

// SetFaults replaces the random faults, e.g. to take the API down in the
// middle of a test and bring it back.
func (s *Server) SetFaults(f Faults) {
	s.mu.Lock()
	s.faults = f
	s.mu.Unlock()
}

// Inject scripts a fault for each of the next len(kinds) data requests, in
// order; scripted faults come before the random ones.
func (s *Server) Inject(kinds ...FaultKind) {
	s.mu.Lock()
	s.script = append(s.script, kinds...)
	s.mu.Unlock()
}

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Status = make(map[int]int, len(s.stats.Status))
	for k, v := range s.stats.Status {
		st.Status[k] = v
	}
	return st
}

// Count returns how many records of ds fall in [from, to).
func (s *Server) Count(ds Dataset, from, to time.Time) int {
	lo, hi := s.data[ds].index(from, to)
	return hi - lo
}

// Handler serves the simulator's routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /oauth/token", s.token)
	mux.HandleFunc("GET /{style}/{dataset}", s.serveData)
	return mux
}

func (s *Server) count(status, records int) {
	s.mu.Lock()
	s.stats.Requests++
	s.stats.Status[status]++
	s.stats.Records += records
	s.mu.Unlock()
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	a := s.cfg.Auth
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostFormValue("client_id"), r.PostFormValue("client_secret")
	}
	if a.ClientID == "" || r.PostFormValue("grant_type") != "client_credentials" || !eq(id, a.ClientID) || !eq(secret, a.ClientSecret) {
		s.count(http.StatusUnauthorized, 0)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":"invalid_client"}`))
		return
	}
	var b [18]byte
	s.mu.Lock()
	for i := range b {
		b[i] = byte(s.rng.Uint32())
	}
	tok := base64.RawURLEncoding.EncodeToString(b[:])
	s.tokens[tok] = time.Now().Add(a.TokenTTL)
	s.stats.Tokens++
	s.mu.Unlock()
	s.count(http.StatusOK, 0)
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"access_token":%q,"token_type":"bearer","expires_in":%d}`, tok, int(a.TokenTTL.Seconds()))
}

func eq(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// authorized checks the request against Auth.
func (s *Server) authorized(r *http.Request) bool {
	a := s.cfg.Auth
	if !a.any() {
		return true
	}
	if a.APIKey != "" && eq(r.Header.Get(a.APIKeyHeader), a.APIKey) {
		return true
	}
	if u, p, ok := r.BasicAuth(); ok && a.BasicUser != "" && eq(u, a.BasicUser) && eq(p, a.BasicPassword) {
		return true
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return false
	}
	if a.Bearer != "" && eq(tok, a.Bearer) {
		return true
	}
	s.mu.Lock()
	exp, ok := s.tokens[tok]
	s.mu.Unlock()
	return ok && time.Now().Before(exp)
}

// decide draws the fault of one data request, or 0 for none. For a 429 it
// also returns the Retry-After.
func (s *Server) decide() (FaultKind, time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.faults
	retryAfter := f.RetryAfter
	if retryAfter <= 0 {
		retryAfter = time.Second
	}
	if len(s.script) > 0 {
		k := s.script[0]
		s.script = s.script[1:]
		return k, retryAfter
	}
	if f.RateLimit > 0 {
		now := time.Now()
		interval := time.Duration(float64(time.Second) / f.RateLimit)
		earliest := now.Add(-time.Duration(max(f.RateBurst, 1)-1) * interval)
		if s.nextSlot.Before(earliest) {
			s.nextSlot = earliest
		}
		if s.nextSlot.After(now) {
			return FaultTooMany, s.nextSlot.Sub(now)
		}
		s.nextSlot = s.nextSlot.Add(interval)
	}
	switch x := s.rng.Float64(); {
	case x < f.TooMany:
		return FaultTooMany, retryAfter
	case x < f.TooMany+f.ServerError:
		return FaultServerError, 0
	case x < f.TooMany+f.ServerError+f.Malformed:
		return FaultMalformed, 0
	}
	if f.Duplicates > 0 && s.rng.Float64() < f.Duplicates {
		return FaultDuplicate, 0
	}
	return 0, 0
}

func (s *Server) delay(ctx context.Context, records int) {
	s.mu.Lock()
	f := s.faults
	j := 1.0
	if f.Jitter > 0 {
		j += f.Jitter * (2*s.rng.Float64() - 1)
	}
	s.mu.Unlock()
	d := time.Duration(float64(f.Latency+time.Duration(records)*f.PerRecord) * j)
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// formatRetryAfter renders d in seconds: whole when it is, else with the
// fraction (at least 1 ms).
func formatRetryAfter(d time.Duration) string {
	if d%time.Second == 0 {
		return strconv.Itoa(int(d / time.Second))
	}
	return strconv.FormatFloat(max(d.Seconds(), 0.001), 'f', 3, 64)
}

func errorJSON(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"error":%q}`, msg)
}

// page is what one request asks for: the index range [start, end) of the
// window's records and what the next request is.
type page struct {
	lo, hi     int // the window
	start, end int // this page
}

func (s *Server) serveData(w http.ResponseWriter, r *http.Request) {
	style, ds := r.PathValue("style"), Dataset(r.PathValue("dataset"))
	d, ok := s.data[ds]
	if !ok {
		s.count(http.StatusNotFound, 0)
		errorJSON(w, http.StatusNotFound, fmt.Sprintf("no dataset %q; have orders, tickets, payments", ds))
		return
	}
	if !s.authorized(r) {
		s.count(http.StatusUnauthorized, 0)
		w.Header().Set("WWW-Authenticate", `Bearer realm="apisim"`)
		errorJSON(w, http.StatusUnauthorized, "missing or wrong credentials")
		return
	}
	q := r.URL.Query()
	from, err1 := time.Parse(time.RFC3339, q.Get("from"))
	to, err2 := time.Parse(time.RFC3339, q.Get("to"))
	if err := errors.Join(err1, err2); err != nil {
		s.count(http.StatusBadRequest, 0)
		errorJSON(w, http.StatusBadRequest, "from and to must be RFC 3339 times: "+err.Error())
		return
	}
	fault, retryAfter := s.decide()
	switch fault {
	case FaultTooMany:
		s.count(http.StatusTooManyRequests, 0)
		w.Header().Set("Retry-After", formatRetryAfter(retryAfter))
		errorJSON(w, http.StatusTooManyRequests, "rate limit exceeded")
		return
	case FaultServerError:
		s.delay(r.Context(), 0)
		s.count(http.StatusInternalServerError, 0)
		errorJSON(w, http.StatusInternalServerError, "internal error")
		return
	case FaultServiceUnavailable:
		s.count(http.StatusServiceUnavailable, 0)
		errorJSON(w, http.StatusServiceUnavailable, "maintenance")
		return
	}
	lo, hi := d.index(from, to)
	var p page
	var next string // the next page's query, or "" on the last page
	var err error
	switch style {
	case "page", "link":
		p, next, err = pageNumber(q, lo, hi, s.cfg.MaxPageSize)
	case "offset":
		p, err = offsetLimit(q, lo, hi, s.cfg.MaxPageSize)
	case "cursor":
		p, next, err = cursorToken(q, lo, hi, s.cfg.MaxPageSize)
	default:
		s.count(http.StatusNotFound, 0)
		errorJSON(w, http.StatusNotFound, fmt.Sprintf("no pagination style %q; have page, offset, cursor, link", style))
		return
	}
	if err != nil {
		s.count(http.StatusBadRequest, 0)
		errorJSON(w, http.StatusBadRequest, err.Error())
		return
	}
	if fault == FaultDuplicate && p.start > p.lo && p.start < p.end {
		p.start-- // the previous page's last record again
	}
	n := p.end - p.start
	s.delay(r.Context(), n)

	b := make([]byte, 0, 64+n*200)
	switch style {
	case "page":
		b = append(b, `{"data":{"items":`...)
		b = d.appendRecords(b, p.start, p.end)
		per := perPage(q, s.cfg.MaxPageSize)
		total := p.hi - p.lo
		pg, _ := strconv.Atoi(cmpOr(q.Get("page"), "1"))
		b = fmt.Appendf(b, `},"meta":{"page":%d,"per_page":%d,"total":%d,"pages":%d}}`, pg, per, total, (total+per-1)/per)
	case "offset":
		b = append(b, `{"results":`...)
		b = d.appendRecords(b, p.start, p.end)
		b = fmt.Appendf(b, `,"total":%d}`, p.hi-p.lo)
	case "cursor":
		b = append(b, `{"data":`...)
		b = d.appendRecords(b, p.start, p.end)
		b = fmt.Appendf(b, `,"next_cursor":%q}`, next)
	case "link":
		b = d.appendRecords(b, p.start, p.end)
		if next != "" {
			u := *r.URL
			nq := u.Query()
			nq.Set("page", next)
			u.RawQuery = nq.Encode()
			w.Header().Set("Link", fmt.Sprintf(`<%s>; rel="next"`, u.RequestURI()))
		}
	}
	if fault == FaultMalformed {
		b = b[:len(b)/2]
	}
	s.count(http.StatusOK, n)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

func (d *data) appendRecords(b []byte, start, end int) []byte {
	b = append(b, '[')
	for k := start; k < end; k++ {
		if k > start {
			b = append(b, ',')
		}
		b = d.appendRecord(b, k)
	}
	return append(b, ']')
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func perPage(q map[string][]string, maxSize int) int {
	n, err := strconv.Atoi(first(q, "per_page"))
	if err != nil || n <= 0 {
		return min(100, maxSize)
	}
	return min(n, maxSize)
}

func first(q map[string][]string, k string) string {
	if v := q[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// pageNumber serves page=N (1-based) of per_page records.
func pageNumber(q map[string][]string, lo, hi, maxSize int) (page, string, error) {
	per := perPage(q, maxSize)
	pg := 1
	if v := first(q, "page"); v != "" {
		var err error
		if pg, err = strconv.Atoi(v); err != nil || pg < 1 {
			return page{}, "", fmt.Errorf("page %q must be a number from 1", v)
		}
	}
	start := min(lo+(pg-1)*per, hi)
	end := min(start+per, hi)
	next := ""
	if end < hi {
		next = strconv.Itoa(pg + 1)
	}
	return page{lo: lo, hi: hi, start: start, end: end}, next, nil
}

// offsetLimit serves skip=N, count=M.
func offsetLimit(q map[string][]string, lo, hi, maxSize int) (page, error) {
	skip, count := 0, min(100, maxSize)
	if v := first(q, "skip"); v != "" {
		var err error
		if skip, err = strconv.Atoi(v); err != nil || skip < 0 {
			return page{}, fmt.Errorf("skip %q must be a number from 0", v)
		}
	}
	if v := first(q, "count"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return page{}, fmt.Errorf("count %q must be a number from 1", v)
		}
		count = min(n, maxSize)
	}
	start := min(lo+skip, hi)
	return page{lo: lo, hi: hi, start: start, end: min(start+count, hi)}, nil
}

// cursorToken serves cursor=<opaque token>, limit=M. The token carries the
// absolute index of the next record.
func cursorToken(q map[string][]string, lo, hi, maxSize int) (page, string, error) {
	limit := min(100, maxSize)
	if v := first(q, "limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return page{}, "", fmt.Errorf("limit %q must be a number from 1", v)
		}
		limit = min(n, maxSize)
	}
	start := lo
	if v := first(q, "cursor"); v != "" {
		raw, err := base64.RawURLEncoding.DecodeString(v)
		k, err2 := strconv.Atoi(strings.TrimPrefix(string(raw), "k"))
		if err != nil || err2 != nil || !strings.HasPrefix(string(raw), "k") || k < lo || k > hi {
			return page{}, "", fmt.Errorf("cursor %q is not one this API issued for this window", v)
		}
		start = k
	}
	end := min(start+limit, hi)
	next := ""
	if end < hi {
		next = base64.RawURLEncoding.EncodeToString([]byte("k" + strconv.Itoa(end)))
	}
	return page{lo: lo, hi: hi, start: start, end: end}, next, nil
}

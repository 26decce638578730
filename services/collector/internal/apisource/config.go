package apisource

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"text/template"
	"time"
)

// Config declares one HTTP API source; it is read from the "api" list of
// the collector's sources file (YAML keys in the tags). Zero values select
// the defaults named.
type Config struct {
	// Name identifies the source in subjects (raw.record.<name>), cursors,
	// backfill windows and heartbeats.
	Name string `yaml:"name"`
	// BaseURL and Path form the first request's URL.
	BaseURL string `yaml:"base_url"`
	Path    string `yaml:"path"`
	// Query holds the query parameters; each value is a Go text/template
	// over the window: {{.From}} and {{.To}} (time.Time, the window is
	// [From, To)), {{.Last}} (To minus one second, for APIs whose end is
	// inclusive), with the functions rfc3339, rfc3339ms, date, datetime
	// (UTC "2006-01-02 15:04:05"), unix, unixms and format "layout":
	//
	//	query: {updated_since: "{{.From | rfc3339}}", updated_before: "{{.To | rfc3339}}", status: all}
	Query map[string]string `yaml:"query"`
	// Headers are sent with every request (Accept is application/json
	// unless set here).
	Headers map[string]string `yaml:"headers"`
	Auth    Auth              `yaml:"auth"`
	// Pagination says how the pages of one window are walked.
	Pagination Pagination `yaml:"pagination"`
	// RecordsPath is the dotted path of the records array in the response
	// body ("data.items"); empty when the body itself is the array.
	RecordsPath string `yaml:"records_path"`
	// KeyFields are the dotted paths of the fields that form the natural
	// key (joined with "|" when there are several). Required.
	KeyFields []string `yaml:"key_fields"`
	// TimeField is the dotted path of the record's timestamp (optional;
	// RawRecord.ObservedAt).
	TimeField string `yaml:"time_field"`
	// TimeLayout is how TimeField is written: rfc3339 (default), unix,
	// unix_ms, or a Go layout such as "2006-01-02 15:04:05" (read as UTC).
	TimeLayout string `yaml:"time_layout"`
	// RateLimit is the most requests per second this source sends (all its
	// windows together; 0 = unlimited), with bursts of Burst (default 1).
	RateLimit float64 `yaml:"rate_limit"`
	Burst     int     `yaml:"burst"`
	// Timeout bounds one request, body included (default 30 s).
	Timeout time.Duration `yaml:"timeout"`
	Retry   Retry         `yaml:"retry"`
	// MaxPages bounds the pages of one window, against an API that never
	// says it is done (default 100,000).
	MaxPages int `yaml:"max_pages"`
}

// Auth is how requests authenticate. Every secret can be given literally
// (discouraged), from an environment variable (*_env) or from a file
// (*_file, e.g. a Kubernetes Secret volume).
type Auth struct {
	// Type is none (default), bearer, basic, api_key or oauth2.
	Type string `yaml:"type"`
	// bearer
	Token     string `yaml:"token"`
	TokenEnv  string `yaml:"token_env"`
	TokenFile string `yaml:"token_file"`
	// basic
	Username     string `yaml:"username"`
	Password     string `yaml:"password"`
	PasswordEnv  string `yaml:"password_env"`
	PasswordFile string `yaml:"password_file"`
	// api_key: the key is sent in Header (default X-API-Key).
	Header  string `yaml:"header"`
	Key     string `yaml:"key"`
	KeyEnv  string `yaml:"key_env"`
	KeyFile string `yaml:"key_file"`
	// oauth2 client credentials: a token from TokenURL (relative to
	// BaseURL when it has no host), renewed before it expires.
	TokenURL         string   `yaml:"token_url"`
	ClientID         string   `yaml:"client_id"`
	ClientSecret     string   `yaml:"client_secret"`
	ClientSecretEnv  string   `yaml:"client_secret_env"`
	ClientSecretFile string   `yaml:"client_secret_file"`
	Scopes           []string `yaml:"scopes"`
}

// Pagination styles.
const (
	StyleNone   = "none"
	StylePage   = "page"
	StyleOffset = "offset"
	StyleCursor = "cursor"
	StyleLink   = "link"
)

// Pagination describes how to walk the pages of one window.
type Pagination struct {
	// Style is none (one request per window), page (page number), offset
	// (offset/limit, such as skip/count), cursor (a next token or next URL
	// in the body) or link (RFC 8288 Link header, rel="next").
	Style string `yaml:"style"`
	// Size is the page size asked for (default 100), in SizeParam
	// (default per_page for page and link, limit for offset and cursor).
	Size      int    `yaml:"size"`
	SizeParam string `yaml:"size_param"`
	// PageParam (default page) and FirstPage (default 1): page style.
	PageParam string `yaml:"page_param"`
	FirstPage *int   `yaml:"first_page"`
	// OffsetParam (default offset): offset style. The offset grows by
	// Size per page.
	OffsetParam string `yaml:"offset_param"`
	// CursorParam (default cursor) and NextPath (default next_cursor):
	// cursor style. The value at NextPath is sent back in CursorParam, or
	// followed as is when it is an absolute URL; an empty, null or missing
	// value ends the window.
	CursorParam string `yaml:"cursor_param"`
	NextPath    string `yaml:"next_path"`
}

// Retry bounds the retries of one request. 429 and 5xx answers and network
// errors are retried; a 429's Retry-After (seconds or an HTTP date) is
// waited (plus a random fifth), anything else backs off exponentially with
// jitter.
type Retry struct {
	// Attempts is the most retries of one request after errors (default
	// 8). Waits the server asked for with Retry-After do not count: only
	// Budget bounds them, so parallel windows that share a rate-limited API
	// cannot starve one another into failure.
	Attempts int `yaml:"attempts"`
	// Base and Max are the first and the longest backoff (defaults 200 ms
	// and 30 s).
	Base time.Duration `yaml:"base"`
	Max  time.Duration `yaml:"max"`
	// Budget bounds the time spent retrying one request (default 5 min).
	Budget time.Duration `yaml:"budget"`
	// MaxRetryAfter is the longest Retry-After honoured; a longer one fails
	// the window at once (default 5 min).
	MaxRetryAfter time.Duration `yaml:"max_retry_after"`
	// Malformed is how often a page that is not valid JSON is asked for
	// again before the window fails (default 2; -1 for never).
	Malformed int `yaml:"malformed"`
}

func (c *Config) withDefaults() {
	p := &c.Pagination
	if p.Style == "" {
		p.Style = StyleNone
	}
	if p.Size <= 0 {
		p.Size = 100
	}
	if p.SizeParam == "" {
		p.SizeParam = "limit"
		if p.Style == StylePage || p.Style == StyleLink {
			p.SizeParam = "per_page"
		}
	}
	if p.PageParam == "" {
		p.PageParam = "page"
	}
	if p.FirstPage == nil {
		one := 1
		p.FirstPage = &one
	}
	if p.OffsetParam == "" {
		p.OffsetParam = "offset"
	}
	if p.CursorParam == "" {
		p.CursorParam = "cursor"
	}
	if p.NextPath == "" {
		p.NextPath = "next_cursor"
	}
	if c.TimeLayout == "" {
		c.TimeLayout = "rfc3339"
	}
	if c.Burst <= 0 {
		c.Burst = 1
	}
	if c.Timeout <= 0 {
		c.Timeout = 30 * time.Second
	}
	r := &c.Retry
	if r.Attempts <= 0 {
		r.Attempts = 8
	}
	if r.Base <= 0 {
		r.Base = 200 * time.Millisecond
	}
	if r.Max <= 0 {
		r.Max = 30 * time.Second
	}
	if r.Budget <= 0 {
		r.Budget = 5 * time.Minute
	}
	if r.MaxRetryAfter <= 0 {
		r.MaxRetryAfter = 5 * time.Minute
	}
	if r.Malformed == 0 {
		r.Malformed = 2
	}
	if r.Malformed < 0 {
		r.Malformed = 0
	}
	if c.MaxPages <= 0 {
		c.MaxPages = 100000
	}
	if c.Auth.Type == "" {
		c.Auth.Type = "none"
	}
	if c.Auth.Type == "api_key" && c.Auth.Header == "" {
		c.Auth.Header = "X-API-Key"
	}
}

// Validate reports every problem of the declaration (after defaults), each
// naming the source and the key to fix.
func (c *Config) Validate() error {
	c.withDefaults()
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("api source %q: "+format, append([]any{c.Name}, args...)...))
	}
	if c.Name == "" {
		bad("name is required")
	}
	if u, err := url.Parse(c.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("base_url %q must be an absolute http or https URL", c.BaseURL)
	}
	for k, v := range c.Query {
		if _, err := parseTemplate(k, v); err != nil {
			bad("query %s: %v", k, err)
		}
	}
	switch c.Pagination.Style {
	case StyleNone, StylePage, StyleOffset, StyleCursor, StyleLink:
	default:
		bad("pagination style %q: use none, page, offset, cursor or link", c.Pagination.Style)
	}
	if len(c.KeyFields) == 0 {
		bad("key_fields is required: the field (or fields) that identify a record, e.g. [id]")
	}
	for _, f := range c.KeyFields {
		if strings.TrimSpace(f) == "" {
			bad("key_fields has an empty field")
		}
	}
	switch c.TimeLayout {
	case "rfc3339", "unix", "unix_ms":
	default:
		if !strings.ContainsAny(c.TimeLayout, "0123456789") {
			bad("time_layout %q: use rfc3339, unix, unix_ms or a Go layout such as 2006-01-02 15:04:05", c.TimeLayout)
		}
	}
	if c.RateLimit < 0 {
		bad("rate_limit %v must not be negative", c.RateLimit)
	}
	a := c.Auth
	switch a.Type {
	case "none":
	case "bearer":
		if a.Token == "" && a.TokenEnv == "" && a.TokenFile == "" {
			bad("auth bearer needs token_env, token_file or token")
		}
	case "basic":
		if a.Username == "" {
			bad("auth basic needs username")
		}
	case "api_key":
		if a.Key == "" && a.KeyEnv == "" && a.KeyFile == "" {
			bad("auth api_key needs key_env, key_file or key")
		}
	case "oauth2":
		if a.TokenURL == "" || a.ClientID == "" {
			bad("auth oauth2 needs token_url and client_id")
		}
		if a.ClientSecret == "" && a.ClientSecretEnv == "" && a.ClientSecretFile == "" {
			bad("auth oauth2 needs client_secret_env, client_secret_file or client_secret")
		}
	default:
		bad("auth type %q: use none, bearer, basic, api_key or oauth2", a.Type)
	}
	return errors.Join(errs...)
}

// secret resolves a secret given literally, by environment variable or by
// file; the first that is set wins in that order: file, env, literal.
func secret(what, literal, env, file string, getenv func(string) string) (string, error) {
	switch {
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("%s file: %w", what, err)
		}
		v := strings.TrimRight(string(b), "\r\n")
		if v == "" {
			return "", fmt.Errorf("%s file %s is empty", what, file)
		}
		return v, nil
	case env != "":
		v := getenv(env)
		if v == "" {
			return "", fmt.Errorf("%s: environment variable %s is not set", what, env)
		}
		return v, nil
	}
	return literal, nil
}

// templateData is what query templates see.
type templateData struct {
	From, To, Last time.Time
}

var templateFuncs = template.FuncMap{
	"rfc3339":   func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"rfc3339ms": func(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z07:00") },
	"date":      func(t time.Time) string { return t.UTC().Format(time.DateOnly) },
	"datetime":  func(t time.Time) string { return t.UTC().Format(time.DateTime) },
	"unix":      func(t time.Time) int64 { return t.Unix() },
	"unixms":    func(t time.Time) int64 { return t.UnixMilli() },
	"format":    func(layout string, t time.Time) string { return t.UTC().Format(layout) },
}

func parseTemplate(name, text string) (*template.Template, error) {
	return template.New(name).Funcs(templateFuncs).Option("missingkey=error").Parse(text)
}

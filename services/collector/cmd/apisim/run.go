package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/punchflow/punchflow/services/collector/internal/apisim"
)

// settings are the command's flags.
type settings struct {
	listen      string
	seed        uint64
	from, to    string
	records     int
	maxPage     int
	faults      apisim.Faults
	auth        apisim.Auth
	basic       string
	oauth       string
	sourcesFile string
	styles      string
	pageSize    int
}

func parse(args []string, getenv func(string) string, stderr io.Writer) (*settings, error) {
	s := &settings{}
	fs := flag.NewFlagSet("apisim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&s.listen, "listen", "127.0.0.1:8090", "address to serve on")
	fs.Uint64Var(&s.seed, "seed", 1, "seed of the data and of the random faults")
	fs.StringVar(&s.from, "from", "2025-08-01", "first day of the records' timestamps (UTC)")
	fs.StringVar(&s.to, "to", "2025-08-31", "last day of the records' timestamps, inclusive")
	fs.IntVar(&s.records, "records", 10000, "records per dataset")
	fs.IntVar(&s.maxPage, "max-page-size", 1000, "largest page a client may ask for")
	fs.DurationVar(&s.faults.Latency, "latency", 0, "delay of every answer (a slow API)")
	fs.DurationVar(&s.faults.PerRecord, "per-record", 0, "extra delay per record served")
	fs.Float64Var(&s.faults.Jitter, "jitter", 0, "vary the delays by up to this fraction (0–1)")
	fs.Float64Var(&s.faults.TooMany, "rate-429", 0, "probability of a 429 answer")
	fs.DurationVar(&s.faults.RetryAfter, "retry-after", time.Second, "Retry-After of a 429")
	fs.Float64Var(&s.faults.RateLimit, "rate-limit", 0, "requests per second allowed (429 beyond; 0 = no limit)")
	fs.IntVar(&s.faults.RateBurst, "rate-burst", 1, "burst of --rate-limit")
	fs.Float64Var(&s.faults.ServerError, "rate-500", 0, "probability of a 500 answer")
	fs.Float64Var(&s.faults.Malformed, "malformed", 0, "probability of a body cut in the middle")
	fs.Float64Var(&s.faults.Duplicates, "duplicates", 0, "probability that a page repeats the previous page's last record")
	fs.StringVar(&s.auth.Bearer, "bearer", "", "demand this bearer token")
	fs.StringVar(&s.basic, "basic", "", "demand basic auth user:password")
	fs.StringVar(&s.auth.APIKeyHeader, "api-key-header", "X-API-Key", "header of --api-key")
	fs.StringVar(&s.auth.APIKey, "api-key", "", "demand this API key")
	fs.StringVar(&s.oauth, "oauth-client", "", "accept OAuth2 client credentials id:secret at POST /oauth/token")
	fs.StringVar(&s.sourcesFile, "sources-file", "", "write the collector's sources file for the three datasets here")
	fs.StringVar(&s.styles, "styles", "orders:page,tickets:cursor,payments:offset", "pagination style per dataset in the sources file (page, offset, cursor, link)")
	fs.IntVar(&s.pageSize, "page-size", 500, "page size in the sources file")
	// Environment fallback: APISIM_<FLAG>.
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if v := getenv("APISIM_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))); v != "" {
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Errorf("APISIM_%s: %w", strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_")), err))
			}
		}
	})
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if s.basic != "" {
		u, p, ok := strings.Cut(s.basic, ":")
		if !ok {
			return nil, fmt.Errorf("--basic %q: want user:password", s.basic)
		}
		s.auth.BasicUser, s.auth.BasicPassword = u, p
	}
	if s.oauth != "" {
		id, sec, ok := strings.Cut(s.oauth, ":")
		if !ok {
			return nil, fmt.Errorf("--oauth-client %q: want id:secret", s.oauth)
		}
		s.auth.ClientID, s.auth.ClientSecret = id, sec
	}
	if s.auth.APIKey == "" {
		s.auth.APIKeyHeader = ""
	}
	return s, nil
}

func (s *settings) config() (apisim.Config, error) {
	from, err := time.Parse(time.DateOnly, s.from)
	if err != nil {
		return apisim.Config{}, fmt.Errorf("--from %q: want YYYY-MM-DD", s.from)
	}
	to, err := time.Parse(time.DateOnly, s.to)
	if err != nil {
		return apisim.Config{}, fmt.Errorf("--to %q: want YYYY-MM-DD", s.to)
	}
	if s.records < 1 {
		return apisim.Config{}, fmt.Errorf("--records %d must be at least 1", s.records)
	}
	return apisim.Config{Seed: s.seed, From: from, To: to.AddDate(0, 0, 1), Records: s.records, MaxPageSize: s.maxPage, Auth: s.auth, Faults: s.faults}, nil
}

// authYAML is the sources file's auth block for the simulator's settings;
// secrets are read from the environment variables it names.
func (s *settings) authYAML() (yaml string, env []string) {
	a := s.auth
	switch {
	case a.ClientID != "":
		return "type: oauth2\ntoken_url: /oauth/token\nclient_id: " + a.ClientID + "\nclient_secret_env: APISIM_CLIENT_SECRET", []string{"APISIM_CLIENT_SECRET=" + a.ClientSecret}
	case a.Bearer != "":
		return "type: bearer\ntoken_env: APISIM_TOKEN", []string{"APISIM_TOKEN=" + a.Bearer}
	case a.APIKey != "":
		return "type: api_key\nheader: " + a.APIKeyHeader + "\nkey_env: APISIM_KEY", []string{"APISIM_KEY=" + a.APIKey}
	case a.BasicUser != "":
		return "type: basic\nusername: " + a.BasicUser + "\npassword_env: APISIM_PASSWORD", []string{"APISIM_PASSWORD=" + a.BasicPassword}
	}
	return "", nil
}

// sourcesYAML renders the collector's sources file for the three datasets.
func (s *settings) sourcesYAML(baseURL string) (string, []string, error) {
	all, per := "", map[string]string{}
	for _, part := range strings.Split(s.styles, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), ":")
		if !ok {
			all = k
			continue
		}
		per[k] = v
	}
	auth, env := s.authYAML()
	var b strings.Builder
	b.WriteString("# Written by apisim: the collector's API sources for the simulated datasets.\napi:\n")
	for _, ds := range apisim.Datasets {
		style := per[string(ds)]
		if style == "" {
			style = all
		}
		switch style {
		case "page", "offset", "cursor", "link":
		default:
			return "", nil, fmt.Errorf("--styles: %s has style %q; use page, offset, cursor or link", ds, style)
		}
		b.WriteString(apisim.SourceYAML(string(ds), baseURL, style, ds, s.pageSize, auth))
	}
	return b.String(), env, nil
}

// run serves the simulator until ctx ends.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	s, err := parse(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	cfg, err := s.config()
	if err != nil {
		return err
	}
	sim, err := apisim.Start(cfg, s.listen)
	if err != nil {
		return err
	}
	defer sim.Close()
	fmt.Fprintf(stdout, "apisim serving %d records per dataset, %s to %s, on %s\n", cfg.Records, s.from, s.to, sim.URL())
	for _, style := range apisim.Styles {
		fmt.Fprintf(stdout, "  %s/%s/{orders,tickets,payments}?from=…&to=…\n", sim.URL(), style)
	}
	if s.sourcesFile != "" {
		y, env, err := s.sourcesYAML(sim.URL())
		if err != nil {
			return err
		}
		if err := os.WriteFile(s.sourcesFile, []byte(y), 0o644); err != nil {
			return fmt.Errorf("write sources file: %w", err)
		}
		fmt.Fprintf(stdout, "sources file: %s\n", s.sourcesFile)
		for _, e := range env {
			fmt.Fprintf(stdout, "  the collector reads the secret from the environment: export %s\n", e)
		}
	}
	fmt.Fprintln(stdout, "Ctrl-C stops")
	<-ctx.Done()
	st := sim.Stats()
	fmt.Fprintf(stdout, "stopped: %d requests, %d records served, answers %v\n", st.Requests, st.Records, st.Status)
	return nil
}

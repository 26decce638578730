package apisource

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// authenticate returns the client requests go through and a function that
// adds static credentials to each request (nil for none and oauth2).
func authenticate(cfg *Config, base *http.Client, getenv func(string) string) (*http.Client, func(*http.Request), error) {
	a := cfg.Auth
	switch a.Type {
	case "bearer":
		tok, err := secret("auth token", a.Token, a.TokenEnv, a.TokenFile, getenv)
		if err != nil {
			return nil, nil, err
		}
		return base, func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }, nil
	case "basic":
		pw, err := secret("auth password", a.Password, a.PasswordEnv, a.PasswordFile, getenv)
		if err != nil {
			return nil, nil, err
		}
		return base, func(r *http.Request) { r.SetBasicAuth(a.Username, pw) }, nil
	case "api_key":
		key, err := secret("auth key", a.Key, a.KeyEnv, a.KeyFile, getenv)
		if err != nil {
			return nil, nil, err
		}
		return base, func(r *http.Request) { r.Header.Set(a.Header, key) }, nil
	case "oauth2":
		sec, err := secret("auth client secret", a.ClientSecret, a.ClientSecretEnv, a.ClientSecretFile, getenv)
		if err != nil {
			return nil, nil, err
		}
		tokenURL, err := resolveURL(cfg.BaseURL, a.TokenURL)
		if err != nil {
			return nil, nil, fmt.Errorf("auth token_url: %w", err)
		}
		cc := clientcredentials.Config{ClientID: a.ClientID, ClientSecret: sec, TokenURL: tokenURL, Scopes: a.Scopes}
		// The token source lives as long as the source; it fetches tokens
		// through the base client (and its timeout).
		ctx := context.WithValue(context.Background(), oauth2.HTTPClient, base)
		c := cc.Client(ctx)
		c.Timeout = base.Timeout
		return c, nil, nil
	}
	return base, nil, nil
}

// isTokenRefused reports whether err is the token endpoint refusing the
// client credentials (a 4xx answer), which no retry fixes.
func isTokenRefused(err error) bool {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.Response == nil {
		return false
	}
	return re.Response.StatusCode >= 400 && re.Response.StatusCode < 500
}

// resolveURL resolves ref against base.
func resolveURL(base, ref string) (string, error) {
	b, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	r, err := url.Parse(ref)
	if err != nil {
		return "", err
	}
	return b.ResolveReference(r).String(), nil
}

// Package config fills a flag.FlagSet from three sources, in this order of
// precedence: command-line flags, PUNCHFLOW_* environment variables, and an
// optional YAML file. Defaults are the flags' own defaults.
package config

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// EnvPrefix is prepended to a flag's name to form its environment variable:
// flag "nats-url" is PUNCHFLOW_NATS_URL.
const EnvPrefix = "PUNCHFLOW_"

// FileFlag is the name of the flag that names the optional YAML file.
const FileFlag = "config"

// EnvName is the environment variable that sets flag name.
func EnvName(name string) string {
	return EnvPrefix + strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(name))
}

// FileSuffix marks a setting whose value is read from a file: the
// environment variable PUNCHFLOW_<FLAG>_FILE, or the YAML key <flag>-file,
// names a file holding the value of <flag>. This is how secrets (database
// URLs, keys, webhook secrets) reach a service from a Kubernetes Secret
// volume, a Docker secret or a systemd credential without appearing in the
// environment, the command line or the configuration file. The indirection
// does not exist for a flag X when the flag set also defines a flag "X-file".
const FileSuffix = "-file"

// commandLineOnly reports whether a flag is taken from the command line only,
// never from the environment or the file: --version must not be switched on
// by a stray PUNCHFLOW_VERSION variable.
func commandLineOnly(name string) bool { return name == "version" }

// Load parses args into fs and fills every flag that was not given on the
// command line from its environment variable, then from a file named by
// PUNCHFLOW_<FLAG>_FILE, and then from the YAML file named by the "config"
// flag (or PUNCHFLOW_CONFIG), if fs defines it.
//
// The YAML file maps flag names to values; nested maps join their keys with
// "-" (nats: {url: x} sets nats-url), and lists join with ",". A key
// "<flag>-file" reads the value of <flag> from that file (see FileSuffix). A
// key that names no flag is an error, so a typo never goes unnoticed. A value
// read from a file loses one trailing line break and is masked in Attrs as a
// secret. Load returns flag.ErrHelp when -h was given, and errors that name
// the source and the setting otherwise.
func Load(fs *flag.FlagSet, args []string, getenv func(string) string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })

	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || commandLineOnly(f.Name) {
			return
		}
		env := EnvName(f.Name)
		v, ok := lookup(getenv, env)
		fileEnv := env + "_FILE"
		path, fromFile := "", false
		if fs.Lookup(f.Name+FileSuffix) == nil {
			path, fromFile = lookup(getenv, fileEnv)
		}
		switch {
		case ok && fromFile:
			errs = append(errs, fmt.Errorf("environment: %s and %s both set %s: keep one", env, fileEnv, f.Name))
		case ok:
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Errorf("environment %s=%q: %v", env, Mask(f.Name, v), err))
			}
			given[f.Name] = true
		case fromFile:
			if err := setFromFile(f, path); err != nil {
				errs = append(errs, fmt.Errorf("environment %s: %w", fileEnv, err))
			}
			given[f.Name] = true
		}
	})
	if len(errs) > 0 {
		return errors.Join(errs...)
	}

	file := fs.Lookup(FileFlag)
	if file == nil || file.Value.String() == "" {
		return nil
	}
	path := file.Value.String()
	values, err := readYAML(path)
	if err != nil {
		return err
	}
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		f := fs.Lookup(k)
		if f == nil || commandLineOnly(k) {
			if target, ok := strings.CutSuffix(k, FileSuffix); ok && fs.Lookup(target) != nil && !commandLineOnly(target) {
				if _, both := values[target]; both {
					return fmt.Errorf("config file %s: %q and %q both set %s: keep one", path, target, k, target)
				}
				if given[target] {
					continue
				}
				if err := setFromFile(fs.Lookup(target), values[k]); err != nil {
					return fmt.Errorf("config file %s: setting %q: %w", path, k, err)
				}
				continue
			}
			return fmt.Errorf("config file %s: unknown setting %q (run with -h to list the settings)", path, k)
		}
		if given[k] {
			continue
		}
		if err := f.Value.Set(values[k]); err != nil {
			return fmt.Errorf("config file %s: setting %q: %v", path, k, Mask(k, err.Error()))
		}
	}
	return nil
}

// setFromFile sets f to the contents of the file at path, without one
// trailing line break, and marks f secret so that Attrs masks it. An empty
// file is an error: a secret that did not arrive must not look like a choice
// of the default.
func setFromFile(f *flag.Flag, path string) error {
	if path == "" {
		return fmt.Errorf("no file named for %s", f.Name)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read %s for %s: %w", path, f.Name, err)
	}
	v := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if v == "" {
		return fmt.Errorf("file %s for %s is empty", path, f.Name)
	}
	if err := f.Value.Set(v); err != nil {
		// The value may be a secret: say what is wrong without echoing it.
		return fmt.Errorf("file %s does not hold a valid %s", path, f.Name)
	}
	if _, ok := f.Value.(secretValue); !ok {
		f.Value = secretValue{f.Value}
	}
	return nil
}

// secretValue marks a flag whose value came from a file; Attrs masks it.
type secretValue struct{ flag.Value }

// IsBoolFlag keeps a wrapped boolean flag usable without a value.
func (s secretValue) IsBoolFlag() bool {
	b, ok := s.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// lookup treats an empty variable as unset, so that an empty entry in a
// Kubernetes manifest does not override a default with nothing.
func lookup(getenv func(string) string, name string) (string, bool) {
	v := getenv(name)
	return v, v != ""
}

func readYAML(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("config file %s is not valid YAML: %w", path, err)
	}
	out := map[string]string{}
	if err := flatten("", doc, out); err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	return out, nil
}

func flatten(prefix string, v any, out map[string]string) error {
	switch x := v.(type) {
	case map[string]any:
		for k, child := range x {
			name := k
			if prefix != "" {
				name = prefix + "-" + k
			}
			if err := flatten(name, child, out); err != nil {
				return err
			}
		}
	case []any:
		parts := make([]string, 0, len(x))
		for _, item := range x {
			switch item.(type) {
			case map[string]any, []any:
				return fmt.Errorf("setting %q: lists may hold only plain values", prefix)
			}
			parts = append(parts, fmt.Sprint(item))
		}
		out[prefix] = strings.Join(parts, ",")
	case nil:
		out[prefix] = ""
	default:
		out[prefix] = fmt.Sprint(x)
	}
	return nil
}

// secretWords mark flags whose values are never logged.
var secretWords = []string{"password", "secret", "token", "creds", "seed", "nkey", "commkey", "comm-key", "key"}

// Attrs returns every flag's effective value as log attributes, with secrets
// masked: flags whose name suggests a secret, and flags whose value was read
// from a file (see FileSuffix), show "***" when set, and passwords inside URLs
// are replaced. Command-line-only flags (--version) are left out.
func Attrs(fs *flag.FlagSet) []slog.Attr {
	var attrs []slog.Attr
	fs.VisitAll(func(f *flag.Flag) {
		if commandLineOnly(f.Name) {
			return
		}
		v := f.Value.String()
		if _, secret := f.Value.(secretValue); secret && v != "" {
			attrs = append(attrs, slog.String(f.Name, "***"))
			return
		}
		attrs = append(attrs, slog.String(f.Name, Mask(f.Name, v)))
	})
	return attrs
}

// Mask hides value if name suggests a secret, and hides the password of any
// URL in a comma-separated value.
func Mask(name, value string) string {
	if value == "" {
		return ""
	}
	lower := strings.ToLower(name)
	for _, w := range secretWords {
		if strings.Contains(lower, w) && !strings.HasSuffix(lower, "-file") {
			return "***"
		}
	}
	parts := strings.Split(value, ",")
	for i, p := range parts {
		if u, err := url.Parse(p); err == nil && u.User != nil {
			if _, has := u.User.Password(); has {
				parts[i] = u.Redacted()
			}
		}
		if strings.Contains(p, "@") && strings.Contains(p, ":") && !strings.Contains(p, "://") {
			// MySQL DSN form user:pass@tcp(host)/db
			if user, rest, ok := strings.Cut(p, "@"); ok {
				if u, _, ok := strings.Cut(user, ":"); ok {
					parts[i] = u + ":***@" + rest
				}
			}
		}
	}
	return strings.Join(parts, ",")
}

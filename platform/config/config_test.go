package config

import (
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type settings struct {
	url     string
	batch   int
	age     time.Duration
	subject string
	secret  string
}

func newFS(s *settings) *flag.FlagSet {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.String(FileFlag, "", "")
	fs.StringVar(&s.url, "nats-url", "nats://default:4222", "")
	fs.IntVar(&s.batch, "batch-rows", 100, "")
	fs.DurationVar(&s.age, "batch-age", time.Second, "")
	fs.StringVar(&s.subject, "subjects", "clean.>", "")
	fs.StringVar(&s.secret, "webhook-secret", "", "")
	return fs
}

func writeYAML(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "cfg.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadPrecedence(t *testing.T) {
	file := writeYAML(t, "nats:\n  url: nats://file:4222\nbatch-rows: 300\nbatch-age: 3s\nsubjects: [clean.a, clean.b]\n")
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want settings
	}{
		{"defaults", nil, nil, settings{"nats://default:4222", 100, time.Second, "clean.>", ""}},
		{"file over defaults, nested keys and lists", []string{"--config", file}, nil, settings{"nats://file:4222", 300, 3 * time.Second, "clean.a,clean.b", ""}},
		{"environment over file", []string{"--config", file}, map[string]string{"PUNCHFLOW_BATCH_ROWS": "400", "PUNCHFLOW_NATS_URL": "nats://env:4222"}, settings{"nats://env:4222", 400, 3 * time.Second, "clean.a,clean.b", ""}},
		{"flag over environment and file", []string{"--config", file, "--batch-rows", "500"}, map[string]string{"PUNCHFLOW_BATCH_ROWS": "400"}, settings{"nats://file:4222", 500, 3 * time.Second, "clean.a,clean.b", ""}},
		{"config file from the environment", nil, map[string]string{"PUNCHFLOW_CONFIG": file}, settings{"nats://file:4222", 300, 3 * time.Second, "clean.a,clean.b", ""}},
		{"empty environment variable is unset", nil, map[string]string{"PUNCHFLOW_BATCH_ROWS": ""}, settings{"nats://default:4222", 100, time.Second, "clean.>", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got settings
			fs := newFS(&got)
			if err := Load(fs, tt.args, func(k string) string { return tt.env[k] }); err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		file string
		want string
	}{
		{"bad environment value names the variable", nil, map[string]string{"PUNCHFLOW_BATCH_ROWS": "many"}, "", `environment PUNCHFLOW_BATCH_ROWS="many"`},
		{"unknown file key", nil, nil, "batch-rowz: 3\n", `unknown setting "batch-rowz"`},
		{"bad file value names the setting", nil, nil, "batch-age: soon\n", `setting "batch-age"`},
		{"invalid yaml", nil, nil, "batch-rows: [1,\n", "not valid YAML"},
		{"missing file", []string{"--config", "/nonexistent/punchflow.yaml"}, nil, "", "config file"},
		{"bad flag", []string{"--batch-rows", "x"}, nil, "", "invalid value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s settings
			fs := newFS(&s)
			args := tt.args
			if tt.file != "" {
				args = append(args, "--config", writeYAML(t, tt.file))
			}
			err := Load(fs, args, func(k string) string { return tt.env[k] })
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestLoadHelp(t *testing.T) {
	var s settings
	if err := Load(newFS(&s), []string{"-h"}, func(string) string { return "" }); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("got %v, want flag.ErrHelp", err)
	}
}

func TestMask(t *testing.T) {
	tests := []struct{ name, flag, value, want string }{
		{"secret flag", "webhook-secret", "s3cr3t", "***"},
		{"comm key", "commkey", "12345", "***"},
		{"file path is not secret", "nats-creds-file", "/etc/punchflow/nats.creds", "/etc/punchflow/nats.creds"},
		{"url password", "postgres-url", "postgres://loader:hunter2@db:5432/pf", "postgres://loader:xxxxx@db:5432/pf"},
		{"url without password", "nats-url", "nats://a:4222,nats://b:4222", "nats://a:4222,nats://b:4222"},
		{"mysql dsn", "mysql-dsn", "loader:hunter2@tcp(db:3306)/pf", "loader:***@tcp(db:3306)/pf"},
		{"empty", "webhook-secret", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Mask(tt.flag, tt.value)
			if got != tt.want {
				t.Fatalf("Mask(%q, %q) = %q, want %q", tt.flag, tt.value, got, tt.want)
			}
			if strings.Contains(got, "hunter2") || (tt.value != "" && strings.Contains(got, "s3cr3t")) {
				t.Fatalf("secret leaked: %q", got)
			}
		})
	}
}

func TestAttrsMaskSecrets(t *testing.T) {
	var s settings
	fs := newFS(&s)
	if err := Load(fs, []string{"--webhook-secret", "s3cr3t", "--nats-url", "nats://u:pw@host:4222"}, func(string) string { return "" }); err != nil {
		t.Fatal(err)
	}
	for _, a := range Attrs(fs) {
		if v := a.Value.String(); strings.Contains(v, "s3cr3t") || strings.Contains(v, ":pw@") {
			t.Fatalf("attribute %s leaks a secret: %s", a.Key, v)
		}
	}
}

func TestEnvName(t *testing.T) {
	if got := EnvName("nats-tls-ca"); got != "PUNCHFLOW_NATS_TLS_CA" {
		t.Fatalf("EnvName = %q", got)
	}
}

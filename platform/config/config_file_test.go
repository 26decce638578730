package config

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeSecret(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadFromFiles(t *testing.T) {
	const pg = "postgres://loader:hunter2@db:5432/pf"
	secretFile := writeSecret(t, pg+"\n")
	rowsFile := writeSecret(t, "250")
	tests := []struct {
		name string
		args []string
		env  map[string]string
		yaml string
		want settings
	}{
		{"environment _FILE", nil, map[string]string{"PUNCHFLOW_NATS_URL_FILE": secretFile}, "",
			settings{pg, 100, 0, "clean.>", ""}},
		{"non-string flag from a file", nil, map[string]string{"PUNCHFLOW_BATCH_ROWS_FILE": rowsFile}, "",
			settings{"nats://default:4222", 250, 0, "clean.>", ""}},
		{"yaml -file key", nil, nil, "nats-url-file: " + secretFile + "\n",
			settings{pg, 100, 0, "clean.>", ""}},
		{"environment _FILE over yaml", nil, map[string]string{"PUNCHFLOW_NATS_URL_FILE": secretFile}, "nats-url: nats://file:4222\n",
			settings{pg, 100, 0, "clean.>", ""}},
		{"command line over _FILE", []string{"--nats-url", "nats://flag:4222"}, map[string]string{"PUNCHFLOW_NATS_URL_FILE": secretFile}, "",
			settings{"nats://flag:4222", 100, 0, "clean.>", ""}},
		{"command line over yaml -file key", []string{"--nats-url", "nats://flag:4222"}, nil, "nats-url-file: /nonexistent\n",
			settings{"nats://flag:4222", 100, 0, "clean.>", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got settings
			fs := newFS(&got)
			args := tt.args
			if tt.yaml != "" {
				args = append(args, "--config", writeYAML(t, tt.yaml))
			}
			if err := Load(fs, args, func(k string) string { return tt.env[k] }); err != nil {
				t.Fatal(err)
			}
			tt.want.age = got.age // not under test
			if got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestLoadFromFilesErrors(t *testing.T) {
	secretFile := writeSecret(t, "nats://u:hunter2@host:4222")
	empty := writeSecret(t, "\n")
	notNumber := writeSecret(t, "hunter2")
	tests := []struct {
		name string
		env  map[string]string
		yaml string
		want string
	}{
		{"both variable and _FILE", map[string]string{"PUNCHFLOW_NATS_URL": "nats://x:4222", "PUNCHFLOW_NATS_URL_FILE": secretFile}, "", "PUNCHFLOW_NATS_URL and PUNCHFLOW_NATS_URL_FILE both set nats-url"},
		{"missing file", map[string]string{"PUNCHFLOW_NATS_URL_FILE": "/nonexistent/secret"}, "", "environment PUNCHFLOW_NATS_URL_FILE: read /nonexistent/secret for nats-url"},
		{"empty file", map[string]string{"PUNCHFLOW_NATS_URL_FILE": empty}, "", "is empty"},
		{"invalid value does not echo the secret", map[string]string{"PUNCHFLOW_BATCH_ROWS_FILE": notNumber}, "", "does not hold a valid batch-rows"},
		{"yaml key and -file key", nil, "nats-url: nats://a:4222\nnats-url-file: " + secretFile + "\n", `"nats-url" and "nats-url-file" both set nats-url`},
		{"yaml -file key for no flag", nil, "nope-file: " + secretFile + "\n", `unknown setting "nope-file"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s settings
			fs := newFS(&s)
			var args []string
			if tt.yaml != "" {
				args = []string{"--config", writeYAML(t, tt.yaml)}
			}
			err := Load(fs, args, func(k string) string { return tt.env[k] })
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("error leaks the secret: %v", err)
			}
		})
	}
}

// A flag set that defines both X and X-file keeps PUNCHFLOW_X_FILE for the
// real flag X-file.
func TestFileIndirectionYieldsToRealFlag(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	rules := fs.String("rules", "", "")
	rulesFile := fs.String("rules-file", "", "")
	p := writeSecret(t, "from the file")
	if err := Load(fs, nil, func(k string) string {
		if k == "PUNCHFLOW_RULES_FILE" {
			return p
		}
		return ""
	}); err != nil {
		t.Fatal(err)
	}
	if *rules != "" || *rulesFile != p {
		t.Fatalf("rules=%q rules-file=%q, want rules empty and rules-file the path", *rules, *rulesFile)
	}
}

func TestAttrsMaskValuesFromFiles(t *testing.T) {
	// batch-rows and subjects have no secret-sounding name and no URL:
	// only their origin marks them.
	subjects := writeSecret(t, "clean.hunter2")
	var s settings
	fs := newFS(&s)
	if err := Load(fs, nil, func(k string) string {
		if k == "PUNCHFLOW_SUBJECTS_FILE" {
			return subjects
		}
		return ""
	}); err != nil {
		t.Fatal(err)
	}
	if s.subject != "clean.hunter2" {
		t.Fatalf("subjects = %q", s.subject)
	}
	found := false
	for _, a := range Attrs(fs) {
		if strings.Contains(a.Value.String(), "hunter2") {
			t.Fatalf("attribute %s leaks a value read from a file: %s", a.Key, a.Value)
		}
		if a.Key == "subjects" {
			found = a.Value.String() == "***"
		}
	}
	if !found {
		t.Fatal("subjects not logged as ***")
	}
}

func TestVersionFlagIsCommandLineOnly(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.String(FileFlag, "", "")
	v := fs.Bool("version", false, "")
	env := map[string]string{"PUNCHFLOW_VERSION": "1.2.3"} // set for some other program: must not matter
	if err := Load(fs, nil, func(k string) string { return env[k] }); err != nil {
		t.Fatalf("PUNCHFLOW_VERSION broke Load: %v", err)
	}
	if *v {
		t.Fatal("--version switched on from the environment")
	}
	if err := Load(fs, []string{"--config", writeYAML(t, "version: true\n")}, func(string) string { return "" }); err == nil || !strings.Contains(err.Error(), `unknown setting "version"`) {
		t.Fatalf("version in the YAML file: err = %v, want unknown setting", err)
	}
	for _, a := range Attrs(fs) {
		if a.Key == "version" {
			t.Fatal("Attrs logs the version flag")
		}
	}
}

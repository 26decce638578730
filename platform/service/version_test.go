package service

import (
	"bytes"
	"flag"
	"strings"
	"testing"
)

func TestParseVersion(t *testing.T) {
	tests := []struct {
		name        string
		args        []string
		env         map[string]string
		wantHelp    bool
		wantPrinted bool
	}{
		{"--version prints and stops", []string{"--version"}, nil, true, true},
		{"--version after other flags", []string{"--log-level", "debug", "--version"}, nil, true, true},
		{"no --version runs", nil, nil, false, false},
		{"PUNCHFLOW_VERSION is not --version", nil, map[string]string{"PUNCHFLOW_VERSION": "v9"}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			fs := flag.NewFlagSet("collector", flag.ContinueOnError)
			fs.SetOutput(&out)
			var c Common
			c.RegisterFlags(fs, ":0")
			validated := false
			help, err := Parse(fs, tt.args, func(k string) string { return tt.env[k] }, func() error { validated = true; return c.Validate() })
			if err != nil {
				t.Fatal(err)
			}
			if help != tt.wantHelp {
				t.Errorf("help = %v, want %v", help, tt.wantHelp)
			}
			printed := strings.HasPrefix(out.String(), "collector ") && strings.Contains(out.String(), "(commit ")
			if printed != tt.wantPrinted {
				t.Errorf("printed %q, want version line: %v", out.String(), tt.wantPrinted)
			}
			if validated == tt.wantHelp {
				t.Errorf("validate called = %v; it must run exactly when the service will start", validated)
			}
		})
	}
}

func TestStartLogsVersionAndExportsBuildInfo(t *testing.T) {
	rt, logs := start(t)
	defer rt.Close()
	if !strings.Contains(logs.String(), `"version":"`) || !strings.Contains(logs.String(), `"commit":"`) {
		t.Errorf("start-up log lacks the build: %s", logs.String())
	}
	mfs, err := rt.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "punchflow_build_info" {
			continue
		}
		labels := map[string]string{}
		for _, l := range mf.GetMetric()[0].GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["service"] != "svc" || labels["version"] == "" || mf.GetMetric()[0].GetGauge().GetValue() != 1 {
			t.Fatalf("punchflow_build_info = %v", mf.GetMetric()[0])
		}
		return
	}
	t.Fatal("punchflow_build_info not exported")
}

package version

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	vcs := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "github.com/punchflow/punchflow/services/collector", Version: "(devel)"},
		Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "abc123"},
			{Key: "vcs.time", Value: "2026-01-02T03:04:05Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	tagged := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.4.0"}}
	tests := []struct {
		name                  string
		version, commit, date string
		bi                    *debug.BuildInfo
		want                  Info
	}{
		{"nothing known", "", "", "", nil, Info{Version: "dev", Commit: "unknown", Date: "unknown"}},
		{"linker stamp wins", "v1.2.3", "0123abc", "2026-05-06T07:08:09Z", vcs, Info{Version: "v1.2.3", Commit: "0123abc", Date: "2026-05-06T07:08:09Z", GoVersion: "go1.26.8"}},
		{"toolchain VCS stamp, dirty tree", "", "", "", vcs, Info{Version: "dev", Commit: "abc123-dirty", Date: "2026-01-02T03:04:05Z", GoVersion: "go1.26.8"}},
		{"module version from go install", "", "", "", tagged, Info{Version: "v1.4.0", Commit: "unknown", Date: "unknown", GoVersion: "go1.26.8"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := resolve(tt.version, tt.commit, tt.date, tt.bi)
			if tt.want.GoVersion == "" {
				tt.want.GoVersion = got.GoVersion // the test binary's own toolchain
			}
			tt.want.Platform = got.Platform
			if got != tt.want {
				t.Errorf("resolve = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestString(t *testing.T) {
	in := Info{Version: "v1.2.3", Commit: "0123abc", Date: "2026-01-02T03:04:05Z", GoVersion: "go1.26.8", Platform: "linux/amd64"}
	got := in.String("collector")
	want := "collector v1.2.3 (commit 0123abc, built 2026-01-02T03:04:05Z, go1.26.8 linux/amd64)"
	if got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
}

func TestRequested(t *testing.T) {
	tests := []struct {
		args []string
		want bool
	}{
		{nil, false},
		{[]string{"--version"}, true},
		{[]string{"-version"}, true},
		{[]string{"--version=true"}, true},
		{[]string{"--version=false"}, false},
		{[]string{"--log-level=debug", "--version"}, true},
		{[]string{"--", "--version"}, false},
		{[]string{"probe", "--version"}, false},
		{[]string{"--versions"}, false},
		{[]string{"--csv-dir", "/in", "--version"}, false}, // stops at the value; the flag set catches it
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			if got := Requested(tt.args); got != tt.want {
				t.Errorf("Requested(%q) = %v, want %v", tt.args, got, tt.want)
			}
		})
	}
}

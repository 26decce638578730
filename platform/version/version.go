// Package version reports which build of punchflow is running. The release
// build stamps the three variables below through the linker:
//
//	go build -ldflags "-X github.com/punchflow/punchflow/platform/version.Version=v1.2.3
//	  -X github.com/punchflow/punchflow/platform/version.Commit=0123abc
//	  -X github.com/punchflow/punchflow/platform/version.Date=2026-01-02T03:04:05Z"
//
// (make build and the Dockerfiles do this). An unstamped build (go run, go
// test) falls back on what the Go toolchain recorded in the binary, and on
// "dev" and "unknown" when it recorded nothing.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// Stamped by the linker with -X; never assigned by code. They are variables
// only because -X can set nothing else.
var (
	Version = ""
	Commit  = ""
	Date    = ""
)

// Info is one build's identity.
type Info struct {
	Version   string // a release tag such as v1.2.3, or "dev"
	Commit    string // the source revision, or "unknown"
	Date      string // the build time (RFC 3339), or "unknown"
	GoVersion string // the Go toolchain, e.g. go1.26.8
	Platform  string // GOOS/GOARCH
}

// Get returns the running binary's build information: the linker-stamped
// values where present, otherwise the module version and VCS settings the
// toolchain embedded, otherwise "dev" and "unknown".
func Get() Info {
	return resolve(Version, Commit, Date, readBuildInfo())
}

func readBuildInfo() *debug.BuildInfo {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return nil
	}
	return bi
}

// resolve is Get without globals, for tests.
func resolve(version, commit, date string, bi *debug.BuildInfo) Info {
	in := Info{Version: version, Commit: commit, Date: date, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi != nil {
		if in.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			in.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if in.Commit == "" {
					in.Commit = s.Value
				}
			case "vcs.time":
				if in.Date == "" {
					in.Date = s.Value
				}
			case "vcs.modified":
				if s.Value == "true" && in.Commit != "" && !strings.HasSuffix(in.Commit, "-dirty") && commit == "" {
					in.Commit += "-dirty"
				}
			}
		}
		if bi.GoVersion != "" {
			in.GoVersion = bi.GoVersion
		}
	}
	if in.Version == "" {
		in.Version = "dev"
	}
	if in.Commit == "" {
		in.Commit = "unknown"
	}
	if in.Date == "" {
		in.Date = "unknown"
	}
	return in
}

// String formats in for people: "collector v1.2.3 (commit 0123abc, built
// 2026-01-02T03:04:05Z, go1.26.8 linux/amd64)".
func (in Info) String(program string) string {
	return fmt.Sprintf("%s %s (commit %s, built %s, %s %s)", program, in.Version, in.Commit, in.Date, in.GoVersion, in.Platform)
}

// Flag is the name of the command-line flag that prints the version.
const Flag = "version"

// Requested reports whether args ask for the version: "-version" or
// "--version" (optionally "=true") among the leading flags, before the first
// argument that is not a flag or a "--" terminator. Flags that take a
// separate value end the scan at their value; the flag set's own parsing
// catches --version there.
func Requested(args []string) bool {
	for _, a := range args {
		if a == "--" || !strings.HasPrefix(a, "-") {
			return false
		}
		switch strings.TrimLeft(a, "-") {
		case Flag, Flag + "=true", Flag + "=1":
			return true
		}
	}
	return false
}

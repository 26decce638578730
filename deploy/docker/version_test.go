package docker

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/punchflow/punchflow/deploy/internal/svctest"
)

// TestVersionStamp builds every service the way make build and the images
// do, with the version stamped through -ldflags -X, and checks what
// `<service> --version` prints on standard output.
func TestVersionStamp(t *testing.T) {
	const pkg = "github.com/punchflow/punchflow/platform/version"
	ldflags := "-X " + pkg + ".Version=v9.8.7-test -X " + pkg + ".Commit=0123abcd4567 -X " + pkg + ".Date=2026-01-02T03:04:05Z"
	dir := t.TempDir()
	for _, svc := range svctest.Services {
		t.Run(svc.Name, func(t *testing.T) {
			bin := filepath.Join(dir, svc.Name)
			build := exec.Command("go", "build", "-ldflags", ldflags, "-o", bin, ".")
			build.Dir = filepath.Join(root, "services", svc.Name)
			build.Env = append(build.Environ(), "GOWORK=off")
			if out, err := build.CombinedOutput(); err != nil {
				t.Fatalf("go build: %v\n%s", err, out)
			}
			var stdout, stderr bytes.Buffer
			run := exec.Command(bin, "--version")
			run.Stdout, run.Stderr = &stdout, &stderr
			if err := run.Run(); err != nil {
				t.Fatalf("%s --version: %v\n%s", svc.Name, err, stderr.String())
			}
			want := svc.Name + " v9.8.7-test (commit 0123abcd4567, built 2026-01-02T03:04:05Z, go"
			if !strings.HasPrefix(stdout.String(), want) {
				t.Fatalf("%s --version printed %q (stderr %q), want it to start with %q", svc.Name, stdout.String(), stderr.String(), want)
			}
		})
	}
}

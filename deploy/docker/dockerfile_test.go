// Package docker holds one Dockerfile per service and the test that keeps
// them buildable without a Docker engine: it checks each file's shape and
// loads the service's packages from exactly the files the build copies.
package docker

import (
	"bufio"
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/punchflow/punchflow/deploy/internal/svctest"
)

const root = "../.."

// dockerfile is the parsed part of a Dockerfile that the test checks.
type dockerfile struct {
	froms    []string
	copies   [][]string // sources of COPY without --from, per instruction
	user     string
	expose   []int
	entry    string
	buildRun string // the RUN with "go build"
}

func parse(t *testing.T, path string) dockerfile {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var d dockerfile
	// Join continuation lines.
	text := strings.ReplaceAll(string(b), "\\\n", " ")
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		switch strings.ToUpper(f[0]) {
		case "FROM":
			img := f[1]
			if strings.HasPrefix(img, "--platform") {
				img = f[2]
			}
			d.froms = append(d.froms, img)
		case "COPY":
			if strings.HasPrefix(f[1], "--from") {
				continue
			}
			d.copies = append(d.copies, f[1:len(f)-1])
		case "USER":
			d.user = f[1]
		case "EXPOSE":
			for _, p := range f[1:] {
				n, _ := strconv.Atoi(p)
				d.expose = append(d.expose, n)
			}
		case "ENTRYPOINT":
			d.entry = strings.TrimSpace(strings.TrimPrefix(line, f[0]))
		case "RUN":
			if strings.Contains(line, "go build") {
				d.buildRun = line
			}
		}
	}
	return d
}

var replaceDir = regexp.MustCompile(`=>\s*(\.\./\S+)`)

// localModules are the directories, relative to the repository root, of
// the modules a service's go.mod replaces with local paths.
func localModules(t *testing.T, service string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "services", service, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range replaceDir.FindAllStringSubmatch(string(b), -1) {
		out = append(out, filepath.ToSlash(filepath.Clean(filepath.Join("services", service, m[1]))))
	}
	return out
}

// TestDockerfiles checks every service's Dockerfile: a multi-stage build of
// a static binary (CGO off) with the version stamped into
// platform/version, on a distroless non-root base, exposing the service's
// ops port; and it copies every local module the service needs.
func TestDockerfiles(t *testing.T) {
	makefile, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(makefile), "VERSION_PKG := github.com/punchflow/punchflow/platform/version") {
		t.Error("the Makefile does not stamp platform/version")
	}
	for _, svc := range svctest.Services {
		t.Run(svc.Name, func(t *testing.T) {
			d := parse(t, svc.Name+".Dockerfile")
			if len(d.froms) < 2 {
				t.Fatalf("%d stages; want a build stage and a runtime stage", len(d.froms))
			}
			final := d.froms[len(d.froms)-1]
			if !strings.HasPrefix(final, "gcr.io/distroless/static") || !strings.HasSuffix(final, ":nonroot") {
				t.Errorf("runtime base %q: want gcr.io/distroless/static...:nonroot", final)
			}
			if d.user != "65532:65532" {
				t.Errorf("USER %q, want 65532:65532 (nonroot; runAsNonRoot checks a numeric uid)", d.user)
			}
			if len(d.expose) != 1 || d.expose[0] != svc.Port {
				t.Errorf("EXPOSE %v, want %d", d.expose, svc.Port)
			}
			if d.entry != `["/usr/local/bin/`+svc.Name+`"]` {
				t.Errorf("ENTRYPOINT %s", d.entry)
			}
			for _, want := range []string{"CGO_ENABLED=0", "GOWORK=off", "-trimpath", "cd services/" + svc.Name,
				"-X github.com/punchflow/punchflow/platform/version.Version=${VERSION}",
				"-X github.com/punchflow/punchflow/platform/version.Commit=${COMMIT}",
				"-X github.com/punchflow/punchflow/platform/version.Date=${DATE}"} {
				if !strings.Contains(d.buildRun, want) {
					t.Errorf("the go build step lacks %q", want)
				}
			}
			copied := map[string]bool{}
			for _, c := range d.copies {
				for _, src := range c {
					copied[strings.TrimSuffix(src, "/")] = true
				}
			}
			for _, m := range append(localModules(t, svc.Name), "services/"+svc.Name) {
				if !copied[m] {
					t.Errorf("the build does not copy %s/, a module the service builds from", m)
				}
			}
		})
	}
}

// TestBuildContext copies, for each service, what its Dockerfile copies
// (after its .dockerignore) into an empty directory and loads every package
// of the service's build there with the build's settings (CGO off, no
// workspace, timetzdata), as `go build` in the image would: a missing
// module, source file or embedded file fails here, without Docker.
func TestBuildContext(t *testing.T) {
	for _, svc := range svctest.Services {
		t.Run(svc.Name, func(t *testing.T) {
			d := parse(t, svc.Name+".Dockerfile")
			ignore := readIgnore(t, svc.Name+".Dockerfile.dockerignore")
			dst := t.TempDir()
			for _, c := range d.copies {
				for _, src := range c {
					copyTree(t, filepath.Join(root, src), filepath.Join(dst, src), strings.TrimSuffix(src, "/"), ignore)
				}
			}
			cmd := exec.Command("go", "list", "-deps", "-tags", "timetzdata", "-f", "{{if .Error}}{{.ImportPath}}: {{.Error}}{{end}}", ".")
			cmd.Dir = filepath.Join(dst, "services", svc.Name)
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=-mod=readonly")
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Run(); err != nil || strings.TrimSpace(out.String()) != "" {
				t.Fatalf("the image's build context cannot build %s: %v\n%s", svc.Name, err, out.String())
			}
		})
	}
}

// ignoreRule is one line of a .dockerignore: a pattern, negated with "!".
type ignoreRule struct {
	re     *regexp.Regexp
	negate bool
}

func readIgnore(t *testing.T, path string) []ignoreRule {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rules []ignoreRule
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		r := ignoreRule{}
		if strings.HasPrefix(line, "!") {
			r.negate, line = true, line[1:]
		}
		var re strings.Builder
		re.WriteString("^")
		for i := 0; i < len(line); i++ {
			switch {
			case strings.HasPrefix(line[i:], "**/"):
				re.WriteString("(.*/)?")
				i += 2
			case strings.HasPrefix(line[i:], "**"):
				re.WriteString(".*")
				i++
			case line[i] == '*':
				re.WriteString("[^/]*")
			case line[i] == '?':
				re.WriteString("[^/]")
			default:
				re.WriteString(regexp.QuoteMeta(line[i : i+1]))
			}
		}
		re.WriteString("(/.*)?$")
		r.re = regexp.MustCompile(re.String())
		rules = append(rules, r)
	}
	return rules
}

// ignored applies the rules in order; the last match decides.
func ignored(rules []ignoreRule, rel string) bool {
	out := false
	for _, r := range rules {
		if r.re.MatchString(rel) {
			out = !r.negate
		}
	}
	return out
}

func copyTree(t *testing.T, src, dst, rel string, ignore []ignoreRule) {
	t.Helper()
	info, err := os.Stat(src)
	if err != nil {
		t.Fatal(err)
	}
	if !info.IsDir() {
		if !ignored(ignore, rel) {
			copyFile(t, src, dst)
		}
		return
	}
	err = filepath.WalkDir(src, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		r, _ := filepath.Rel(src, p)
		if ignored(ignore, filepath.ToSlash(filepath.Join(rel, r))) {
			return nil
		}
		copyFile(t, p, filepath.Join(dst, r))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestIgnoreRules(t *testing.T) {
	rules := readIgnore(t, "collector.Dockerfile.dockerignore")
	for rel, want := range map[string]bool{
		"proto/go.mod":                                           false,
		"services/collector/app/run.go":                          false,
		"services/collector/app/run_test.go":                     true,
		"proto/testdata/golden/x.json":                           true,
		"bin/collector":                                          true,
		"services/collector/internal/zksim/interop/package.json": true,
		"README.md":                                              true,
	} {
		if got := ignored(rules, rel); got != want {
			t.Errorf("ignored(%q) = %v, want %v", rel, got, want)
		}
	}
}

package interop

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// nodePackages are the published clients under test, pinned.
var nodePackages = []struct{ name, version string }{
	{"node-zklib", "1.3.0"},
	{"zkteco-js", "1.7.2"},
}

// npmInstallTimeout bounds the one-time npm install.
const npmInstallTimeout = 3 * time.Minute

var (
	installOnce sync.Once
	installDir  string
	installErr  error
)

// nodeModules returns the node_modules folder that holds nodePackages,
// installing them with npm the first time into
// <user cache dir>/punchflow-npm/<packages>. The install goes to a scratch
// folder that is renamed into place once complete, so concurrent test
// processes never see half an install. It fails the test, with what to do,
// when node or npm is missing or npm cannot install; it skips only under
// -short outside CI.
func nodeModules(t *testing.T) string {
	t.Helper()
	if testing.Short() && os.Getenv("CI") == "" {
		t.Skip("-short: skipping the Node.js interoperability tests (they need node, npm and the npm registry)")
	}
	installOnce.Do(func() { installDir, installErr = installNodePackages() })
	if installErr != nil {
		t.Fatalf("Node.js interoperability tests cannot run: %v", installErr)
	}
	return installDir
}

func installNodePackages() (string, error) {
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			return "", fmt.Errorf("%s not found on PATH: install Node.js 18 or later with npm (Debian: apt-get install nodejs npm)", tool)
		}
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("find a cache directory for the npm packages: %w (set HOME or XDG_CACHE_HOME)", err)
	}
	var specs, names []string
	for _, p := range nodePackages {
		specs = append(specs, p.name+"@"+p.version)
		names = append(names, p.name+"-"+p.version)
	}
	parent := filepath.Join(cache, "punchflow-npm")
	final := filepath.Join(parent, strings.Join(names, "_"))
	if checkInstalled(final) == nil {
		return filepath.Join(final, "node_modules"), nil
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", fmt.Errorf("create npm cache folder: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, "install-*")
	if err != nil {
		return "", fmt.Errorf("create npm install folder: %w", err)
	}
	defer os.RemoveAll(tmp) // a no-op once renamed

	ctx, cancel := context.WithTimeout(context.Background(), npmInstallTimeout)
	defer cancel()
	args := append([]string{"install", "--no-audit", "--no-fund", "--no-update-notifier",
		"--fetch-retries=2", "--fetch-retry-mintimeout=2000", "--fetch-retry-maxtimeout=10000", "--fetch-timeout=60000", "--prefix", tmp}, specs...)
	cmd := exec.CommandContext(ctx, "npm", args...)
	cmd.Dir = tmp
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("timed out after %v", npmInstallTimeout)
		}
		return "", fmt.Errorf("npm %s: %w (is the npm registry reachable? npm_config_registry selects a mirror)\n%s",
			strings.Join(args, " "), err, lastLines(out.String(), 15))
	}
	if err := checkInstalled(tmp); err != nil {
		return "", fmt.Errorf("npm install %s: %w", strings.Join(specs, " "), err)
	}
	if err := os.Rename(tmp, final); err != nil {
		// Another test process may have finished first; its copy will do.
		if checkInstalled(final) != nil {
			return "", fmt.Errorf("move the npm install into %s: %w", final, err)
		}
	}
	return filepath.Join(final, "node_modules"), nil
}

// checkInstalled reports whether dir/node_modules holds every package of
// nodePackages at its pinned version.
func checkInstalled(dir string) error {
	for _, p := range nodePackages {
		b, err := os.ReadFile(filepath.Join(dir, "node_modules", p.name, "package.json"))
		if err != nil {
			return fmt.Errorf("package %s missing: %w", p.name, err)
		}
		var pkg struct{ Version string }
		if err := json.Unmarshal(b, &pkg); err != nil {
			return fmt.Errorf("package %s: read package.json: %w", p.name, err)
		}
		if pkg.Version != p.version {
			return fmt.Errorf("package %s is version %q, want %s", p.name, pkg.Version, p.version)
		}
	}
	return nil
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(len(lines)-n, 0):], "\n")
}

// driver runs testdata/driver.js with lib against addr and returns its
// stdout. It runs node with TZ=UTC (see the package comment) in a scratch
// working directory, because both libraries append error logs to files in
// the working directory. A failed run returns an error with node's stderr.
func driver(ctx context.Context, modules, lib, mode, addr string, extra ...string) ([]byte, error) {
	script, err := filepath.Abs(filepath.Join("testdata", "driver.js"))
	if err != nil {
		return nil, err
	}
	host, port, ok := strings.Cut(addr, ":")
	if !ok {
		return nil, fmt.Errorf("device address %q has no port", addr)
	}
	dir, err := os.MkdirTemp("", "interop-node-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	cmd := exec.CommandContext(ctx, "node", append([]string{script, lib, mode, host, port}, extra...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "NODE_PATH="+modules, "TZ=UTC")
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", err, ctx.Err())
		}
		return nil, fmt.Errorf("node driver.js %s %s %s: %w\nstderr:\n%s", lib, mode, addr, err, lastLines(stderr.String(), 30))
	}
	return stdout.Bytes(), nil
}

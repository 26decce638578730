// Package pod turns a rendered Deployment's container into something a test
// can run in-process through a service's Run function: its arguments and
// environment, with every volume it mounts written into a local directory
// and every path into those volumes rewritten to point there.
package pod

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/punchflow/punchflow/deploy/internal/manifest"
)

// Container is one container of a Deployment, made runnable.
type Container struct {
	Name  string
	Image string
	Args  []string
	Env   map[string]string
	// Root holds the container's volumes, one directory per mount.
	Root string
	// Mounts maps each mount path in the container to its local directory.
	Mounts map[string]string
}

// Getenv is the container's environment as a service's getenv.
func (c Container) Getenv(name string) string { return c.Env[name] }

// Local rewrites a path inside the container to the local file.
func (c Container) Local(path string) string { return rewrite(path, c.Mounts) }

// External supplies objects the manifests reference but do not contain
// (Secrets created out of band): name → file name → content.
type External map[string]map[string][]byte

// FromDeployment prepares the first container of the Deployment named name
// among objs, writing its volumes under root. ConfigMaps and Secrets come
// from objs (a generated name with its hash suffix is matched as rendered)
// or from external; emptyDir and persistentVolumeClaim volumes are empty
// directories. Items, subPath and projected volumes are not supported.
func FromDeployment(objs []manifest.Object, name, root string, external External) (Container, error) {
	deps := manifest.Select(objs, "Deployment", name)
	if len(deps) != 1 {
		return Container{}, fmt.Errorf("deployment %s: found %d", name, len(deps))
	}
	d := deps[0]
	podSpec, _ := manifest.Lookup(d.Content, "spec", "template", "spec").(map[string]any)
	containers, _ := podSpec["containers"].([]any)
	if len(containers) == 0 {
		return Container{}, fmt.Errorf("%s has no container", d.ID())
	}
	ct, _ := containers[0].(map[string]any)
	c := Container{Name: manifest.String(ct, "name"), Image: manifest.String(ct, "image"), Env: map[string]string{}, Root: root, Mounts: map[string]string{}}

	volumes := map[string]map[string]any{}
	vols, _ := podSpec["volumes"].([]any)
	for _, v := range vols {
		vm, _ := v.(map[string]any)
		volumes[manifest.String(vm, "name")] = vm
	}
	mounts, _ := ct["volumeMounts"].([]any)
	var written []string // files from ConfigMaps, rewritten once every mount is known
	for i, m := range mounts {
		mm, _ := m.(map[string]any)
		if manifest.String(mm, "subPath") != "" {
			return c, fmt.Errorf("%s: volumeMount %d uses subPath, not supported", d.ID(), i)
		}
		vol := volumes[manifest.String(mm, "name")]
		if vol == nil {
			return c, fmt.Errorf("%s: volumeMount %q names no volume", d.ID(), manifest.String(mm, "name"))
		}
		dir := filepath.Join(root, fmt.Sprintf("vol%d", i))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return c, err
		}
		files, err := volumeFiles(objs, vol, external)
		if err != nil {
			return c, fmt.Errorf("%s: volume %s: %w", d.ID(), manifest.String(vol, "name"), err)
		}
		for fn, content := range files {
			if err := os.WriteFile(filepath.Join(dir, fn), content, 0o600); err != nil {
				return c, err
			}
			if vol["configMap"] != nil {
				written = append(written, filepath.Join(dir, fn))
			}
		}
		c.Mounts[manifest.String(mm, "mountPath")] = dir
	}
	// Settings files name paths in other volumes (csv-dir: /var/lib/...).
	for _, f := range written {
		b, err := os.ReadFile(f)
		if err != nil {
			return c, err
		}
		if err := os.WriteFile(f, []byte(rewriteText(string(b), c.Mounts)), 0o600); err != nil {
			return c, err
		}
	}

	for _, a := range stringsOf(ct["args"]) {
		c.Args = append(c.Args, rewrite(a, c.Mounts))
	}
	envs, _ := ct["env"].([]any)
	for _, e := range envs {
		em, _ := e.(map[string]any)
		n := manifest.String(em, "name")
		switch {
		case em["valueFrom"] == nil:
			c.Env[n] = rewrite(manifest.String(em, "value"), c.Mounts)
		case manifest.Lookup(em, "valueFrom", "resourceFieldRef") != nil:
			// Resource limits (GOMEMLIMIT) are the runtime's, not the test's.
		default:
			return c, fmt.Errorf("%s: env %s: only value and resourceFieldRef are supported", d.ID(), n)
		}
	}
	return c, nil
}

// volumeFiles returns the files a configMap or secret volume shows.
func volumeFiles(objs []manifest.Object, vol map[string]any, external External) (map[string][]byte, error) {
	switch {
	case vol["configMap"] != nil:
		name := manifest.String(vol, "configMap", "name")
		for _, o := range manifest.Select(objs, "ConfigMap", name) {
			files := map[string][]byte{}
			data, _ := o.Content["data"].(map[string]any)
			for k, v := range data {
				files[k] = []byte(fmt.Sprint(v))
			}
			return files, nil
		}
		if f, ok := external[name]; ok {
			return f, nil
		}
		return nil, fmt.Errorf("ConfigMap %s is neither rendered nor supplied", name)
	case vol["secret"] != nil:
		name := manifest.String(vol, "secret", "secretName")
		for _, o := range manifest.Select(objs, "Secret", name) {
			files := map[string][]byte{}
			data, _ := o.Content["data"].(map[string]any)
			for k, v := range data {
				b, err := base64.StdEncoding.DecodeString(fmt.Sprint(v))
				if err != nil {
					return nil, fmt.Errorf("Secret %s key %s: %w", name, k, err)
				}
				files[k] = b
			}
			sd, _ := o.Content["stringData"].(map[string]any)
			for k, v := range sd {
				files[k] = []byte(fmt.Sprint(v))
			}
			return files, nil
		}
		if f, ok := external[name]; ok {
			return f, nil
		}
		return nil, fmt.Errorf("Secret %s is neither rendered nor supplied", name)
	case vol["emptyDir"] != nil, vol["persistentVolumeClaim"] != nil:
		return nil, nil
	}
	return nil, fmt.Errorf("volume type not supported")
}

// rewrite replaces the longest mount path that begins s, or begins its value
// after "=" (--config=/etc/...).
func rewrite(s string, mounts map[string]string) string {
	paths := make([]string, 0, len(mounts))
	for p := range mounts {
		paths = append(paths, p)
	}
	sort.Slice(paths, func(i, j int) bool { return len(paths[i]) > len(paths[j]) })
	for _, p := range paths {
		i := strings.Index(s, p)
		if i < 0 || (i > 0 && s[i-1] != '=') {
			continue // a path is the whole value or follows "--flag="
		}
		if len(s) == i+len(p) || s[i+len(p)] == '/' {
			return s[:i] + mounts[p] + s[i+len(p):]
		}
	}
	return s
}

// rewriteText replaces every mount path in text that stands as a whole path
// (not followed by a letter, digit, '-', '_' or '.') with its local directory.
func rewriteText(text string, mounts map[string]string) string {
	paths := make([]string, 0, len(mounts))
	for p := range mounts {
		paths = append(paths, p)
	}
	sort.Slice(paths, func(i, j int) bool { return len(paths[i]) > len(paths[j]) })
	var b strings.Builder
	for i := 0; i < len(text); {
		matched := false
		for _, p := range paths {
			if strings.HasPrefix(text[i:], p) {
				end := i + len(p)
				if end == len(text) || !pathByte(text[end]) {
					b.WriteString(mounts[p])
					i = end
					matched = true
					break
				}
			}
		}
		if !matched {
			b.WriteByte(text[i])
			i++
		}
	}
	return b.String()
}

func pathByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
}

func stringsOf(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, e := range list {
		out = append(out, fmt.Sprint(e))
	}
	return out
}

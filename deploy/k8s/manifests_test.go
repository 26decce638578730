// Package k8s holds the Kubernetes manifests (kustomize base, components and
// overlays) and the tests that render and validate them offline.
package k8s

import (
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/punchflow/punchflow/deploy/internal/manifest"
	"github.com/punchflow/punchflow/deploy/internal/svctest"
)

// overlay is a deployable kustomization and what the test expects of it.
type overlay struct {
	dir string
	// replicas of every stream and bucket.
	replicas int
	// external are the Secrets and ConfigMaps the overlay references but
	// does not create (created out of band, see docs/operations.md).
	external []string
	// auth: the services authenticate to NATS and use TLS.
	auth bool
	// account is the NACK Account the pipeline's JetStream resources
	// belong to ("" for none).
	account string
}

var overlays = []overlay{
	{dir: "overlays/dev", replicas: 1},
	{dir: "overlays/prod", replicas: 3, auth: true, account: "punchflow", external: []string{
		"loader-database", "nats-ca", "nack-punchflow", "nack-readers", "collector-comm-keys", "collector-fleet",
		"punchflow-nats-collector", "punchflow-nats-transformer", "punchflow-nats-loader", "punchflow-nats-healthwatch",
	}},
}

// hpa lists the services scaled by a HorizontalPodAutoscaler.
var hpa = map[string]bool{"transformer": true, "loader": true}

var (
	validatorOnce sync.Once
	validator     *manifest.Validator
	validatorErr  error
)

func schemas(t *testing.T) *manifest.Validator {
	t.Helper()
	validatorOnce.Do(func() {
		openapi, _ := filepath.Glob("testdata/openapi/*.json.gz")
		crds, _ := filepath.Glob("testdata/crds/*.y*ml")
		validator, validatorErr = manifest.NewValidator(openapi, crds)
	})
	if validatorErr != nil {
		t.Fatal(validatorErr)
	}
	return validator
}

var (
	renderMu sync.Mutex
	rendered = map[string][]manifest.Object{}
)

// render builds a kustomization once per test binary.
func render(t *testing.T, dir string) []manifest.Object {
	t.Helper()
	renderMu.Lock()
	defer renderMu.Unlock()
	if objs, ok := rendered[dir]; ok {
		return objs
	}
	objs, err := manifest.Render(dir)
	if err != nil {
		t.Fatal(err)
	}
	rendered[dir] = objs
	return objs
}

// TestRenderAndValidate renders the base and every overlay and validates
// every object: strict decoding into the Kubernetes API types, the
// Kubernetes OpenAPI schema, and the NACK and Prometheus Operator CRD
// schemas.
func TestRenderAndValidate(t *testing.T) {
	v := schemas(t)
	dirs := []string{"base"}
	for _, o := range overlays {
		dirs = append(dirs, o.dir)
	}
	for _, dir := range dirs {
		t.Run(dir, func(t *testing.T) {
			objs := render(t, dir)
			if len(objs) < 30 {
				t.Fatalf("%s rendered only %d objects", dir, len(objs))
			}
			seen := map[string]bool{}
			kinds := map[string]int{}
			for _, o := range objs {
				if seen[o.ID()] {
					t.Errorf("%s twice", o.ID())
				}
				seen[o.ID()] = true
				kinds[o.Kind]++
				if err := v.Validate(o); err != nil {
					t.Error(err)
				}
			}
			t.Logf("%d objects validated: %v", len(objs), kinds)
		})
	}
}

// TestServices checks what each service needs in every overlay: its
// objects, probes on the ops endpoints, resources, a restricted security
// context, and selectors that match.
func TestServices(t *testing.T) {
	for _, ov := range overlays {
		objs := render(t, ov.dir)
		for _, svc := range svctest.Services {
			t.Run(ov.dir+"/"+svc.Name, func(t *testing.T) {
				for _, kind := range []string{"Deployment", "Service", "ServiceAccount", "ConfigMap", "PodDisruptionBudget", "NetworkPolicy"} {
					if n := len(manifest.Select(objs, kind, svc.Name)); n != 1 {
						t.Errorf("%s %s: found %d, want 1", kind, svc.Name, n)
					}
				}
				checkDeployment(t, objs, ov, svc)
			})
		}
		t.Run(ov.dir+"/references", func(t *testing.T) { checkReferences(t, objs, ov) })
		t.Run(ov.dir+"/monitoring", func(t *testing.T) { checkMonitoring(t, objs) })
	}
}

func checkDeployment(t *testing.T, objs []manifest.Object, ov overlay, svc svctest.Service) {
	t.Helper()
	deps := manifest.Select(objs, "Deployment", svc.Name)
	if len(deps) != 1 {
		return
	}
	d := deps[0].Content
	podLabels, _ := manifest.Lookup(d, "spec", "template", "metadata", "labels").(map[string]any)
	selector, _ := manifest.Lookup(d, "spec", "selector", "matchLabels").(map[string]any)
	if !matches(selector, podLabels) {
		t.Errorf("Deployment selector %v does not match its pod labels %v", selector, podLabels)
	}

	// Replicas: an autoscaled Deployment leaves them to the autoscaler, or
	// every apply would reset them.
	hpas := manifest.Select(objs, "HorizontalPodAutoscaler", svc.Name)
	if hpa[svc.Name] {
		if len(hpas) != 1 {
			t.Fatalf("HorizontalPodAutoscaler %s: found %d", svc.Name, len(hpas))
		}
		h := hpas[0].Content
		if manifest.String(h, "spec", "scaleTargetRef", "kind") != "Deployment" || manifest.String(h, "spec", "scaleTargetRef", "name") != svc.Name {
			t.Errorf("HorizontalPodAutoscaler targets %v", manifest.Lookup(h, "spec", "scaleTargetRef"))
		}
		if manifest.Lookup(d, "spec", "replicas") != nil {
			t.Errorf("Deployment sets replicas although an autoscaler owns them")
		}
		minR, _ := manifest.Lookup(h, "spec", "minReplicas").(float64)
		maxR, _ := manifest.Lookup(h, "spec", "maxReplicas").(float64)
		if minR < 1 || maxR < minR {
			t.Errorf("autoscaler bounds %v..%v", minR, maxR)
		}
	} else if len(hpas) != 0 {
		t.Errorf("unexpected HorizontalPodAutoscaler %s", svc.Name)
	}

	pod, _ := manifest.Lookup(d, "spec", "template", "spec").(map[string]any)
	if pod["automountServiceAccountToken"] != false {
		t.Errorf("pod mounts a service account token it never uses")
	}
	if manifest.String(pod, "serviceAccountName") != svc.Name {
		t.Errorf("serviceAccountName = %q", manifest.String(pod, "serviceAccountName"))
	}
	psc, _ := pod["securityContext"].(map[string]any)
	if psc["runAsNonRoot"] != true || manifest.String(psc, "seccompProfile", "type") != "RuntimeDefault" {
		t.Errorf("pod securityContext %v: want runAsNonRoot and seccomp RuntimeDefault", psc)
	}
	if uid, _ := psc["runAsUser"].(float64); uid == 0 {
		t.Errorf("pod runs as uid 0")
	}
	containers, _ := pod["containers"].([]any)
	if len(containers) != 1 {
		t.Fatalf("%d containers", len(containers))
	}
	c, _ := containers[0].(map[string]any)
	csc, _ := c["securityContext"].(map[string]any)
	drop, _ := manifest.Lookup(csc, "capabilities", "drop").([]any)
	if csc["allowPrivilegeEscalation"] != false || csc["readOnlyRootFilesystem"] != true || csc["runAsNonRoot"] != true ||
		csc["privileged"] == true || !slices.Contains(drop, any("ALL")) || manifest.Lookup(csc, "capabilities", "add") != nil {
		t.Errorf("container securityContext %v is not restricted", csc)
	}

	image := manifest.String(c, "image")
	if i := strings.LastIndex(image, ":"); i < 0 || strings.Contains(image[i:], "/") || strings.HasSuffix(image, ":latest") {
		t.Errorf("image %q has no pinned tag", image)
	}
	if !strings.HasSuffix(strings.Split(image, ":")[0], "/"+svc.Name) {
		t.Errorf("image %q is not the %s image", image, svc.Name)
	}

	ports, _ := c["ports"].([]any)
	portNames := map[string]float64{}
	for _, p := range ports {
		portNames[manifest.String(p, "name")], _ = manifest.Lookup(p, "containerPort").(float64)
	}
	if portNames["http"] != float64(svc.Port) {
		t.Errorf("container port http = %v, want %d", portNames["http"], svc.Port)
	}
	for probe, path := range map[string]string{"startupProbe": "/healthz", "readinessProbe": "/readyz", "livenessProbe": "/healthz"} {
		if got := manifest.String(c, probe, "httpGet", "path"); got != path {
			t.Errorf("%s path = %q, want %q", probe, got, path)
		}
		if port := manifest.String(c, probe, "httpGet", "port"); port != "http" {
			t.Errorf("%s port = %q, want the named port http", probe, port)
		}
	}
	for _, r := range []string{"requests", "limits"} {
		for _, res := range []string{"cpu", "memory"} {
			if manifest.Lookup(c, "resources", r, res) == nil {
				t.Errorf("resources.%s.%s not set", r, res)
			}
		}
	}

	grace, _ := pod["terminationGracePeriodSeconds"].(float64)
	if grace <= 20 {
		t.Errorf("terminationGracePeriodSeconds %v must exceed the 20s shutdown-timeout", grace)
	}

	for _, kind := range []string{"Service", "PodDisruptionBudget", "NetworkPolicy"} {
		for _, o := range manifest.Select(objs, kind, svc.Name) {
			var sel map[string]any
			switch kind {
			case "Service":
				sel, _ = manifest.Lookup(o.Content, "spec", "selector").(map[string]any)
				if tp := manifest.String(o.Content, "spec", "ports", "0", "targetPort"); tp != "http" {
					t.Errorf("Service targetPort = %q, want http", tp)
				}
			case "PodDisruptionBudget":
				sel, _ = manifest.Lookup(o.Content, "spec", "selector", "matchLabels").(map[string]any)
			case "NetworkPolicy":
				sel, _ = manifest.Lookup(o.Content, "spec", "podSelector", "matchLabels").(map[string]any)
				types, _ := manifest.Lookup(o.Content, "spec", "policyTypes").([]any)
				if !slices.Contains(types, any("Ingress")) || !slices.Contains(types, any("Egress")) {
					t.Errorf("NetworkPolicy policyTypes %v: want Ingress and Egress", types)
				}
				if !allowsEgress(o.Content, 4222) {
					t.Errorf("NetworkPolicy does not let the service reach NATS on 4222")
				}
			}
			if len(sel) == 0 || !matches(sel, podLabels) {
				t.Errorf("%s selector %v does not select the pods %v", kind, sel, podLabels)
			}
		}
	}

	env := map[string]string{}
	envs, _ := c["env"].([]any)
	for _, e := range envs {
		env[manifest.String(e, "name")] = manifest.String(e, "value")
	}
	if ov.auth {
		for _, k := range []string{"PUNCHFLOW_NATS_NKEY_FILE", "PUNCHFLOW_NATS_TLS_CA"} {
			if env[k] == "" {
				t.Errorf("%s not set: the service would connect without credentials or TLS", k)
			}
		}
		if env["PUNCHFLOW_NATS_INBOX_PREFIX"] != "_INBOX_"+svc.Name {
			t.Errorf("PUNCHFLOW_NATS_INBOX_PREFIX = %q, want _INBOX_%s (its NATS permissions allow only that)", env["PUNCHFLOW_NATS_INBOX_PREFIX"], svc.Name)
		}
		if !strings.HasPrefix(env["PUNCHFLOW_NATS_URL"], "tls://") {
			t.Errorf("PUNCHFLOW_NATS_URL = %q, want tls://", env["PUNCHFLOW_NATS_URL"])
		}
	}
}

// checkReferences: every ConfigMap and Secret a pod uses is rendered or
// listed as external, and every volume mount names a volume.
func checkReferences(t *testing.T, objs []manifest.Object, ov overlay) {
	have := map[string]bool{}
	for _, o := range objs {
		have[o.Kind+"/"+o.Name] = true
	}
	for _, d := range manifest.Select(objs, "Deployment", "") {
		vols, _ := manifest.Lookup(d.Content, "spec", "template", "spec", "volumes").([]any)
		names := map[string]bool{}
		for _, v := range vols {
			names[manifest.String(v, "name")] = true
			var ref string
			switch {
			case manifest.Lookup(v, "configMap") != nil:
				ref = "ConfigMap/" + manifest.String(v, "configMap", "name")
			case manifest.Lookup(v, "secret") != nil:
				ref = "Secret/" + manifest.String(v, "secret", "secretName")
			case manifest.Lookup(v, "persistentVolumeClaim") != nil:
				ref = "PersistentVolumeClaim/" + manifest.String(v, "persistentVolumeClaim", "claimName")
			default:
				continue
			}
			name := strings.SplitN(ref, "/", 2)[1]
			if !have[ref] && !slices.Contains(ov.external, name) {
				t.Errorf("%s uses %s, which is neither rendered nor a documented external object", d.ID(), ref)
			}
		}
		mounts, _ := manifest.Lookup(d.Content, "spec", "template", "spec", "containers", "0", "volumeMounts").([]any)
		for _, m := range mounts {
			if !names[manifest.String(m, "name")] {
				t.Errorf("%s mounts %q, which is no volume", d.ID(), manifest.String(m, "name"))
			}
		}
	}
	for _, name := range ov.external {
		if have["Secret/"+name] || have["ConfigMap/"+name] {
			t.Errorf("%s is listed as external but rendered", name)
		}
	}
}

// checkMonitoring: the ServiceMonitor selects all four Services on their
// http port.
func checkMonitoring(t *testing.T, objs []manifest.Object) {
	sms := manifest.Select(objs, "ServiceMonitor", "")
	if len(sms) != 1 {
		t.Fatalf("%d ServiceMonitors", len(sms))
	}
	sel, _ := manifest.Lookup(sms[0].Content, "spec", "selector", "matchLabels").(map[string]any)
	port := manifest.String(sms[0].Content, "spec", "endpoints", "0", "port")
	for _, svc := range svctest.Services {
		for _, s := range manifest.Select(objs, "Service", svc.Name) {
			labels, _ := manifest.Lookup(s.Content, "metadata", "labels").(map[string]any)
			if !matches(sel, labels) {
				t.Errorf("ServiceMonitor selector %v misses Service %s %v", sel, svc.Name, labels)
			}
			if manifest.String(s.Content, "spec", "ports", "0", "name") != port {
				t.Errorf("Service %s has no port %q", svc.Name, port)
			}
		}
	}
	if len(manifest.Select(objs, "PrometheusRule", "")) != 1 {
		t.Errorf("no PrometheusRule")
	}
}

func matches(selector, labels map[string]any) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func allowsEgress(np map[string]any, port float64) bool {
	rules, _ := manifest.Lookup(np, "spec", "egress").([]any)
	for _, r := range rules {
		ports, _ := manifest.Lookup(r, "ports").([]any)
		for _, p := range ports {
			if n, _ := manifest.Lookup(p, "port").(float64); n == port {
				return true
			}
		}
	}
	return false
}

// keys flattens a YAML settings file's keys the way platform/config does.
func keys(prefix string, v any, out *[]string) {
	m, ok := v.(map[string]any)
	if !ok {
		*out = append(*out, prefix)
		return
	}
	for k, child := range m {
		name := k
		if prefix != "" {
			name = prefix + "-" + k
		}
		keys(name, child, out)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

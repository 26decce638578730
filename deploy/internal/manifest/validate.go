package manifest

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// objectMetaSchema is the name of ObjectMeta in the Kubernetes OpenAPI
// documents; custom resources' metadata is validated against it.
const objectMetaSchema = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"

// Validator checks objects offline. It is safe for concurrent use once built.
type Validator struct {
	schemas map[schema.GroupVersionKind]*jsonschema.Schema
	// builtin marks the kinds that also decode strictly into Go types.
	builtin map[schema.GroupVersionKind]bool
	decoder runtime.Decoder
}

// NewValidator compiles a validator from Kubernetes OpenAPI v3 documents
// (one per group-version, as served under /openapi/v3; ".gz" files are
// gunzipped) and files of CustomResourceDefinitions (YAML, several documents
// per file allowed).
//
// Every schema is made strict the way the API server's strict field
// validation is: an object schema that lists its properties and neither sets
// additionalProperties nor x-kubernetes-preserve-unknown-fields rejects
// unknown fields. OpenAPI's nullable becomes a "null" type. CEL rules
// (x-kubernetes-validations) are not evaluated.
func NewValidator(openAPIFiles, crdFiles []string) (*Validator, error) {
	v := &Validator{schemas: map[schema.GroupVersionKind]*jsonschema.Schema{}, builtin: map[schema.GroupVersionKind]bool{}}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	type target struct {
		gvk schema.GroupVersionKind
		loc string
	}
	var targets []target
	metaLoc := ""
	for _, f := range openAPIFiles {
		doc, err := readJSON(f)
		if err != nil {
			return nil, err
		}
		schemas, ok := Lookup(doc, "components", "schemas").(map[string]any)
		if !ok {
			return nil, fmt.Errorf("openapi document %s has no components.schemas", f)
		}
		for _, s := range schemas {
			strict(s)
		}
		url := "file:///openapi/" + filepath.Base(f)
		if err := c.AddResource(url, doc); err != nil {
			return nil, fmt.Errorf("openapi document %s: %w", f, err)
		}
		names := make([]string, 0, len(schemas))
		for n := range schemas {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, name := range names {
			if name == objectMetaSchema && metaLoc == "" {
				metaLoc = url + "#/components/schemas/" + name
			}
			gvks, _ := Lookup(schemas[name], "x-kubernetes-group-version-kind").([]any)
			for _, g := range gvks {
				gvk := schema.GroupVersionKind{Group: String(g, "group"), Version: String(g, "version"), Kind: String(g, "kind")}
				// Every document repeats meta types such as Status; the first wins.
				if _, seen := v.builtin[gvk]; seen {
					continue
				}
				v.builtin[gvk] = true
				targets = append(targets, target{gvk, url + "#/components/schemas/" + jsonPointerEscape(name)})
			}
		}
	}
	if metaLoc == "" && len(crdFiles) > 0 {
		return nil, errors.New("no OpenAPI document defines ObjectMeta, which custom resources' metadata needs")
	}
	for _, f := range crdFiles {
		crds, err := readCRDs(f)
		if err != nil {
			return nil, err
		}
		for i, crd := range crds {
			group := String(crd, "spec", "group")
			kind := String(crd, "spec", "names", "kind")
			versions, _ := Lookup(crd, "spec", "versions").([]any)
			for _, ver := range versions {
				if served, _ := Lookup(ver, "served").(bool); !served {
					continue
				}
				root, ok := Lookup(ver, "schema", "openAPIV3Schema").(map[string]any)
				if !ok {
					return nil, fmt.Errorf("%s: CRD %s version %s has no openAPIV3Schema", f, String(crd, "metadata", "name"), String(ver, "name"))
				}
				strict(root)
				props, _ := root["properties"].(map[string]any)
				if props == nil {
					props = map[string]any{}
					root["properties"] = props
				}
				// The API server adds these three to every custom resource.
				props["apiVersion"] = map[string]any{"type": "string"}
				props["kind"] = map[string]any{"type": "string"}
				props["metadata"] = map[string]any{"$ref": metaLoc}
				if _, set := root["additionalProperties"]; !set && root["x-kubernetes-preserve-unknown-fields"] != true {
					root["additionalProperties"] = false
				}
				gvk := schema.GroupVersionKind{Group: group, Version: String(ver, "name"), Kind: kind}
				url := fmt.Sprintf("file:///crd/%s/%d/%s.json", filepath.Base(f), i, gvk.Version)
				if err := c.AddResource(url, root); err != nil {
					return nil, fmt.Errorf("%s: CRD %s: %w", f, kind, err)
				}
				targets = append(targets, target{gvk, url})
			}
		}
	}
	for _, t := range targets {
		s, err := c.Compile(t.loc)
		if err != nil {
			return nil, fmt.Errorf("compile schema of %s: %w", t.gvk, err)
		}
		v.schemas[t.gvk] = s
	}

	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, autoscalingv2.AddToScheme, policyv1.AddToScheme, networkingv1.AddToScheme} {
		if err := add(scheme); err != nil {
			return nil, err
		}
	}
	v.decoder = serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDeserializer()
	for gvk := range v.builtin {
		if !scheme.Recognizes(gvk) {
			delete(v.builtin, gvk)
		}
	}
	return v, nil
}

// Knows reports whether v has a schema for gvk.
func (v *Validator) Knows(gvk schema.GroupVersionKind) bool { return v.schemas[gvk] != nil }

// Validate checks o: a kind without a schema is an error; a built-in kind
// must decode strictly (no unknown or duplicate fields, every value of the
// right Go type) into its k8s.io/api type; and every kind must satisfy its
// JSON Schema. The error lists every problem found.
func (v *Validator) Validate(o Object) error {
	gvk := o.GVK()
	sch := v.schemas[gvk]
	if sch == nil {
		return fmt.Errorf("%s: no schema for %s (unknown kind or apiVersion)", o.ID(), gvk)
	}
	raw, err := json.Marshal(o.Content)
	if err != nil {
		return fmt.Errorf("%s: %w", o.ID(), err)
	}
	var errs []error
	if v.builtin[gvk] {
		if _, _, err := v.decoder.Decode(raw, nil, nil); err != nil {
			errs = append(errs, fmt.Errorf("strict decoding into %s: %w", gvk.Kind, err))
		}
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("%s: %w", o.ID(), err)
	}
	if err := sch.Validate(inst); err != nil {
		var ve *jsonschema.ValidationError
		if errors.As(err, &ve) {
			errs = append(errs, fmt.Errorf("schema: %s", flatten(ve)))
		} else {
			errs = append(errs, fmt.Errorf("schema: %w", err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s: %w", o.ID(), errors.Join(errs...))
	}
	return nil
}

// flatten lists the leaf causes of a validation error, one per line, with
// the instance location of each.
func flatten(ve *jsonschema.ValidationError) string {
	p := message.NewPrinter(language.English)
	var lines []string
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			lines = append(lines, "at /"+strings.Join(e.InstanceLocation, "/")+": "+e.ErrorKind.LocalizedString(p))
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	sort.Strings(lines)
	return strings.Join(lines, "; ")
}

// strict rewrites an OpenAPI schema in place for JSON Schema 2020-12 with
// the API server's strict field validation (see NewValidator).
func strict(node any) {
	s, ok := node.(map[string]any)
	if !ok {
		return
	}
	if props, ok := s["properties"].(map[string]any); ok {
		for _, p := range props {
			strict(p)
		}
		if _, set := s["additionalProperties"]; !set && s["x-kubernetes-preserve-unknown-fields"] != true {
			s["additionalProperties"] = false
		}
	}
	if ap, ok := s["additionalProperties"].(map[string]any); ok {
		strict(ap)
	}
	if items, ok := s["items"].(map[string]any); ok {
		strict(items)
	}
	for _, k := range []string{"allOf", "anyOf", "oneOf"} {
		if list, ok := s[k].([]any); ok {
			for _, e := range list {
				strict(e)
			}
		}
	}
	if not, ok := s["not"].(map[string]any); ok {
		strict(not)
	}
	if s["nullable"] == true {
		if t, ok := s["type"].(string); ok {
			s["type"] = []any{t, "null"}
		}
	}
}

func jsonPointerEscape(s string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(s)
}

func readJSON(path string) (any, error) {
	b, err := readMaybeGzip(path)
	if err != nil {
		return nil, err
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("openapi document %s: %w", path, err)
	}
	return doc, nil
}

func readMaybeGzip(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		defer zr.Close()
		r = zr
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return b, nil
}

// readCRDs returns the CustomResourceDefinitions in a YAML file, decoded as
// JSON values (json.Number for numbers, as jsonschema expects).
func readCRDs(path string) ([]map[string]any, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
	var out []map[string]any
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
			continue
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		m, ok := doc.(map[string]any)
		if !ok || m["kind"] != "CustomResourceDefinition" {
			continue
		}
		out = append(out, m)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s holds no CustomResourceDefinition", path)
	}
	return out, nil
}

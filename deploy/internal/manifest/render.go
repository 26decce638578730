// Package manifest renders kustomizations with the kustomize API and
// validates the objects they produce offline: strict decoding into the
// Kubernetes API types, JSON Schema validation against the Kubernetes OpenAPI
// documents, and validation of custom resources against the openAPIV3Schema of
// their CustomResourceDefinitions.
package manifest

import (
	"fmt"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	sigsyaml "sigs.k8s.io/yaml"
)

// Object is one rendered Kubernetes object.
type Object struct {
	APIVersion string
	Kind       string
	Name       string
	Namespace  string
	// Content is the object as encoding/json decodes it: maps, slices,
	// strings, float64 numbers and bools.
	Content map[string]any
	// YAML is the object as kustomize printed it.
	YAML []byte
}

// GVK is the object's group, version and kind.
func (o Object) GVK() schema.GroupVersionKind {
	return schema.FromAPIVersionAndKind(o.APIVersion, o.Kind)
}

// ID names the object for messages: "Deployment punchflow/collector".
func (o Object) ID() string {
	if o.Namespace == "" {
		return o.Kind + " " + o.Name
	}
	return o.Kind + " " + o.Namespace + "/" + o.Name
}

// Render builds the kustomization in dir, as `kustomize build dir` does with
// default options, and returns its objects in output order.
func Render(dir string) ([]Object, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	var out []Object
	for _, r := range m.Resources() {
		y, err := r.AsYAML()
		if err != nil {
			return nil, fmt.Errorf("kustomize build %s: print %s: %w", dir, r.CurId(), err)
		}
		var content map[string]any
		if err := sigsyaml.Unmarshal(y, &content); err != nil {
			return nil, fmt.Errorf("kustomize build %s: decode %s: %w", dir, r.CurId(), err)
		}
		out = append(out, Object{
			APIVersion: r.GetApiVersion(), Kind: r.GetKind(), Name: r.GetName(), Namespace: r.GetNamespace(),
			Content: content, YAML: y,
		})
	}
	return out, nil
}

// Select returns the objects of kind whose name is name, or every object of
// kind when name is empty.
func Select(objs []Object, kind, name string) []Object {
	var out []Object
	for _, o := range objs {
		if o.Kind == kind && (name == "" || o.Name == name) {
			out = append(out, o)
		}
	}
	return out
}

// Lookup walks obj's content along path ("spec", "template", ...) and
// returns what it finds there, or nil. A numeric step indexes a list.
func Lookup(content any, path ...string) any {
	cur := content
	for _, p := range path {
		switch c := cur.(type) {
		case map[string]any:
			cur = c[p]
		case []any:
			var i int
			if _, err := fmt.Sscanf(p, "%d", &i); err != nil || i < 0 || i >= len(c) {
				return nil
			}
			cur = c[i]
		default:
			return nil
		}
	}
	return cur
}

// String returns Lookup as a string, or "" when it is not one.
func String(content any, path ...string) string {
	s, _ := Lookup(content, path...).(string)
	return s
}

package adms

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"gopkg.in/yaml.v3"
)

// LoadDevices reads the allow-list file:
//
//	devices:
//	  - serial: CQUJ190460155
//	    site: hq
//	    time_zone: Europe/Berlin
//
// Unknown keys are errors; every device needs a serial and a site.
func LoadDevices(path string) ([]Device, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("adms devices file: %w", err)
	}
	var doc struct {
		Devices []Device `yaml:"devices"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("adms devices file %s: %w", path, err)
	}
	if len(doc.Devices) == 0 {
		return nil, fmt.Errorf("adms devices file %s lists no devices (devices: [{serial: …, site: …}])", path)
	}
	// New checks the rest (duplicates, sites, zones) with the same messages.
	if _, err := New(Config{Devices: doc.Devices}, Deps{}); err != nil {
		return nil, fmt.Errorf("adms devices file %s: %w", path, err)
	}
	return doc.Devices, nil
}

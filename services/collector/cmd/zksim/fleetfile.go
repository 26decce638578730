package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// commKeyEnv is the environment variable the fleet file names for the comm
// key of the whole fleet; it is also the variable zksim reads --commkey
// from, so one export serves both programs.
const commKeyEnv = envPrefix + "COMMKEY"

// fleetEntry is one device of the collector's fleet file (the format of
// the collector's internal/fleet package: serial, address, port, transport,
// site, time_zone, mode, and comm_key_env, since keys never live in the file).
type fleetEntry struct {
	Serial     string `yaml:"serial"`
	Address    string `yaml:"address"`
	Port       int    `yaml:"port"`
	Transport  string `yaml:"transport"`
	CommKeyEnv string `yaml:"comm_key_env,omitempty"`
	Site       string `yaml:"site"`
	TimeZone   string `yaml:"time_zone"`
	Mode       string `yaml:"mode"`
}

// writeFleetFile writes the collector's device list for the running fleet
// f to path (replacing it atomically). Devices with a comm key name an
// environment variable for it: ZKSIM_COMMKEY for fleetKey, the fleet's key,
// and ZKSIM_COMMKEY_<serial> for keys set per device. It returns the
// exports the collector needs ("NAME=value").
func writeFleetFile(path string, f *simFleet, fleetKey uint32) ([]string, error) {
	var entries []fleetEntry
	var exports []string
	seen := map[string]bool{}
	for _, d := range f.devices {
		cfg := d.dev.Config()
		host, port, err := net.SplitHostPort(d.addr)
		if err != nil {
			return nil, fmt.Errorf("fleet file: device %s address %q: %w", cfg.SerialNumber, d.addr, err)
		}
		p, _ := strconv.Atoi(port)
		e := fleetEntry{Serial: cfg.SerialNumber, Address: dialHost(host), Port: p, Transport: d.spec.Transport,
			Site: d.spec.Site, TimeZone: d.spec.TimeZone, Mode: d.spec.Mode}
		if cfg.CommKey != 0 {
			e.CommKeyEnv = commKeyEnv
			if cfg.CommKey != fleetKey {
				e.CommKeyEnv = commKeyEnv + "_" + envToken(cfg.SerialNumber)
			}
			if !seen[e.CommKeyEnv] {
				seen[e.CommKeyEnv] = true
				exports = append(exports, fmt.Sprintf("%s=%d", e.CommKeyEnv, cfg.CommKey))
			}
		}
		entries = append(entries, e)
	}
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "# Devices served by zksim; the collector's fleet file.\n")
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(struct {
		Devices []fleetEntry `yaml:"devices"`
	}{entries}); err != nil {
		return nil, fmt.Errorf("fleet file: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return nil, fmt.Errorf("fleet file %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	if _, err := tmp.Write(buf.Bytes()); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("fleet file %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("fleet file %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return nil, fmt.Errorf("fleet file %s: %w", path, err)
	}
	return exports, nil
}

// dialHost is the host a client dials to reach a device listening on
// host: the loopback address when the device listens on every address.
func dialHost(host string) string {
	ip := net.ParseIP(host)
	switch {
	case ip == nil || !ip.IsUnspecified():
		return host
	case ip.To4() != nil:
		return "127.0.0.1"
	default:
		return "::1"
	}
}

// envToken turns a serial into environment-variable characters.
func envToken(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			return r
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		default:
			return '_'
		}
	}, s)
}

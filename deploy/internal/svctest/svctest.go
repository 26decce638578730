// Package svctest runs punchflow's four services in-process through their
// Run functions, as tests of deployment material need them: with the
// arguments and environment a manifest gives, waiting for /readyz, scraping
// /metrics, and stopping them cleanly.
package svctest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"regexp"
	"sort"
	"testing"

	"github.com/punchflow/punchflow/platform/cli"
	"github.com/punchflow/punchflow/platform/servicetest"
	collector "github.com/punchflow/punchflow/services/collector/app"
	healthwatch "github.com/punchflow/punchflow/services/healthwatch/app"
	loader "github.com/punchflow/punchflow/services/loader/app"
	transformer "github.com/punchflow/punchflow/services/transformer/app"
)

// Service is one of the four, with its default ops port.
type Service struct {
	Name string
	Run  cli.RunFunc
	Port int
}

// Services are the four services in pipeline order.
var Services = []Service{
	{"collector", collector.Run, 8081},
	{"transformer", transformer.Run, 8082},
	{"loader", loader.Run, 8083},
	{"healthwatch", healthwatch.Run, 8084},
}

// Lookup returns the service called name.
func Lookup(name string) (Service, bool) {
	for _, s := range Services {
		if s.Name == name {
			return s, true
		}
	}
	return Service{}, false
}

var flagLine = regexp.MustCompile(`^\s+-([a-z0-9][a-z0-9-]*)`)

// Flags returns the names of the flags a service defines, read from its -h
// output, sorted.
func Flags(s Service) ([]string, error) {
	var out bytes.Buffer
	if err := s.Run(context.Background(), []string{"-h"}, func(string) string { return "" }, &out, &out); err != nil {
		return nil, fmt.Errorf("%s -h: %w", s.Name, err)
	}
	var names []string
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		if m := flagLine.FindStringSubmatch(sc.Text()); m != nil {
			names = append(names, m[1])
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%s -h listed no flags:\n%s", s.Name, out.String())
	}
	sort.Strings(names)
	return names, nil
}

// Running is a started service (see platform/servicetest).
type Running = servicetest.Running

// Start runs s as servicetest.Start does.
func Start(t testing.TB, s Service, args []string, getenv func(string) string) *Running {
	t.Helper()
	return servicetest.Start(t, s.Name, s.Run, args, getenv)
}

// Tail returns the last n bytes of s.
func Tail(s string, n int) string { return servicetest.Tail(s, n) }

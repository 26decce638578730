// Package cli holds the few lines every punchflow main needs.
package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/punchflow/punchflow/platform/version"
)

// RunFunc is a service's whole program: it returns when ctx is cancelled (on
// SIGINT or SIGTERM) after a graceful drain, or with the error that stopped it.
type RunFunc func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error

// Main runs run with the process's arguments, environment and standard
// streams, cancels its context on SIGINT or SIGTERM, and exits 1 with the
// error printed if it fails. "--version" among the leading flags prints the
// build (platform/version) to standard output and exits 0 without calling
// run; service.Parse answers it too, for a run called in-process.
func Main(run RunFunc) {
	if version.Requested(os.Args[1:]) {
		fmt.Fprintln(os.Stdout, version.Get().String(filepath.Base(os.Args[0])))
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", filepath.Base(os.Args[0]), err)
		os.Exit(1)
	}
}

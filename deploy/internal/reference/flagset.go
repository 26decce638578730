package reference

import (
	"flag"
	"io"
)

// newFlagSet is a throw-away flag set: registering topology's flags on it
// fills a Config with its defaults.
func newFlagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("reference", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

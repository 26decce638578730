// Command loader writes clean records into databases in micro-batches,
// exactly once in effect. See app.Run.
package main

import (
	"os"
	"runtime/debug"

	"github.com/punchflow/punchflow/platform/cli"
	"github.com/punchflow/punchflow/services/loader/app"
)

// gcPercent is the loader's garbage collection target unless GOGC sets
// one: it decodes and encodes every row and keeps a cache of days, and at
// twice Go's default it spends less CPU collecting for a heap that stays
// far below its memory limit (GOMEMLIMIT, which the deployment sets).
const gcPercent = 200

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	cli.Main(app.Run)
}

// Command loader writes clean records into databases in micro-batches,
// exactly once in effect. See app.Run.
package main

import (
	"github.com/punchflow/punchflow/platform/cli"
	"github.com/punchflow/punchflow/services/loader/app"
)

func main() { cli.Main(app.Run) }

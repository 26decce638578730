// Command healthwatch turns heartbeats into per-source state and serves it.
// See app.Run.
package main

import (
	"github.com/punchflow/punchflow/platform/cli"
	"github.com/punchflow/punchflow/services/healthwatch/app"
)

func main() { cli.Main(app.Run) }

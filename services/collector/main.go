// Command collector reads devices, files and APIs and publishes raw records
// and heartbeats. See app.Run.
package main

import (
	"github.com/punchflow/punchflow/platform/cli"
	"github.com/punchflow/punchflow/services/collector/app"
)

func main() { cli.Main(app.Run) }

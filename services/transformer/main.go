// Command transformer turns raw punches into clean attendance events under
// the payroll rules. See app.Run.
package main

import (
	"github.com/punchflow/punchflow/platform/cli"
	"github.com/punchflow/punchflow/services/transformer/app"
)

func main() { cli.Main(app.Run) }

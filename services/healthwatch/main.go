// Command healthwatch turns device and source heartbeats into device states,
// alerts and scheduled reports delivered to Slack, Teams, signed webhooks,
// Alertmanager and e-mail, and serves a status page. `healthwatch report
// --now` sends or prints a report on demand. See app.Run.
package main

import (
	"github.com/punchflow/punchflow/platform/cli"
	"github.com/punchflow/punchflow/services/healthwatch/app"
)

func main() { cli.Main(app.Run) }

// Command apisim serves simulated business APIs (orders, tickets, payments)
// for demos, benchmarks and pointing the collector's API sources at:
//
//	apisim --listen 127.0.0.1:8090 --records 100000 --from 2025-08-01 --to 2025-08-31 \
//	       [--latency 50ms] [--per-record 20us] [--rate-429 0.05] [--retry-after 1s] \
//	       [--rate-limit 20] [--rate-500 0.02] [--malformed 0.01] [--duplicates 0.1] \
//	       [--bearer TOKEN | --basic user:pass | --api-key KEY | --oauth-client id:secret] \
//	       [--sources-file sources.yaml]
//
// Every dataset is served in the four pagination styles (see package
// apisim). --sources-file writes the collector's sources file for the three
// datasets. Flags can also come from APISIM_* environment variables.
package main

import "github.com/punchflow/punchflow/platform/cli"

func main() { cli.Main(run) }

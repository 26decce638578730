// Command zksim serves a fleet of simulated ZKTeco attendance devices on
// consecutive ports, for demos, benchmarks and pointing a collector (or any
// port-4370 client) at:
//
//	zksim --listen 127.0.0.1:4370 --devices 64 --users 500 --records 50000 \
//	      [--udp] [--commkey K] [--rtt 20ms] [--punch-rate 2/s] [--layout 40] \
//	      [--seed N] [--fleet-file out.yaml] [--config fleet.yaml]
//
// See run for the details and zksim -h for every flag.
package main

import "github.com/punchflow/punchflow/platform/cli"

func main() { cli.Main(run) }

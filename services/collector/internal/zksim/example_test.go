package zksim_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/punchflow/punchflow/services/collector/internal/zk"
	"github.com/punchflow/punchflow/services/collector/internal/zksim"
)

// A collector session against a simulated device: read the whole log with
// the device disabled, then compare with what the device holds.
func Example() {
	dev, err := zksim.Start(zksim.Config{Seed: 1, Users: 10, Records: 2500, CommKey: 1234})
	if err != nil {
		log.Fatal(err)
	}
	defer dev.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := zk.Dial(ctx, dev.Addr(), zk.WithCommKey(1234))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	var recs []zk.AttendanceRecord
	err = c.WithDisabled(ctx, func(ctx context.Context) error {
		var bad []*zk.RecordError
		recs, bad, err = c.Attendance(ctx)
		for _, b := range bad {
			fmt.Println("dead-letter:", b)
		}
		return err
	})
	if err != nil {
		log.Fatal(err)
	}
	first := recs[0]
	fmt.Printf("read %d of %d records; device enabled: %v\n", len(recs), len(dev.Attendance()), dev.Enabled())
	fmt.Printf("first: user %s at %s, state %d\n", first.UserID, first.DeviceTime.Format(time.DateTime), first.State)
	// Output:
	// read 2500 of 2500 records; device enabled: true
	// first: user 1009 at 2024-01-01 08:09:01, state 0
}

// Package interop holds the conformance tests that drive the device
// simulator (package zksim) with the published Node.js ZKTeco clients,
// node-zklib 1.3.0 and zkteco-js 1.7.2, and compare what they read, field by
// field, with what the Go client (package zk) reads from the same device and
// with the simulator's own data. It has no code outside its tests.
//
// The tests install the two npm packages once into the user cache directory
// (see nodeModules in npm_test.go) and run the driver script
// testdata/driver.js with node. They need node and npm on the PATH and the
// npm registry on first use; without them they fail with instructions
// (they skip only under -short outside CI).
//
// Library quirks the comparisons account for, each asserted exactly rather
// than ignored:
//
//   - Both libraries turn the zone-less device time into a JavaScript Date
//     with the local-time constructor, so the instant depends on the zone of
//     the node process, and in a zone with daylight saving a wall time in
//     the spring-forward gap does not exist and moves by an hour. The tests
//     run node with TZ=UTC, where the Date's UTC fields are the device's
//     wall clock.
//   - zkteco-js returns record times as Date.prototype.toString() text
//     ("Mon Jan 15 2024 08:00:00 GMT+0000 (Coordinated Universal Time)")
//     and getFirmware() keeps the reply's NUL terminator.
//   - Both libraries read only the first 9 bytes of a user id and always
//     decode 40-byte records and 72-byte users over TCP; they read no work
//     code and no user group, and node-zklib neither state nor verify mode.
//     The simulated devices therefore use those layouts and short user ids.
//   - Neither package supports a comm key (node-zklib gained one only after
//     1.3.0), so the devices here have none.
//   - node-zklib sends every CMD_READ_BUFFER of a download at once and both
//     libraries parse at most one frame per socket read; the devices run
//     with a Config.FrameGap of 25 ms, as the protocol notes recommend.
package interop

// Package zksim simulates a ZKTeco attendance terminal on port-4370 protocol
// for tests, benchmarks and demos, in the manner of net/http/httptest:
//
//	dev, err := zksim.Start(zksim.Config{Seed: 1, Users: 20, Records: 5000})
//	if err != nil { … }
//	defer dev.Close()
//	c, err := zk.Dial(ctx, dev.Addr())
//
// A Device speaks TCP and UDP on the same port, holds a user table and an
// attendance log generated deterministically from a seed (exposed through
// Users and Attendance so tests can compare what a client read with what the
// device holds), answers small datasets inline and large ones through the
// buffered chunked read, supports the legacy direct read, comm-key
// authentication, realtime events, clock get/set, disable/enable and clearing
// the log, and injects the faults of Config.Faults.
//
// The simulator follows the compatibility rules of the protocol notes
// (zk-protocol.md, §1.16): correct checksums on everything it sends,
// inbound checksums logged and accepted unless StrictChecksum, replies to
// 8-byte-read commands without data, a 1-byte CMD_GET_PINWIDTH reply,
// CMD_ACK_ERROR for unknown options, no answer to a client's CMD_ACK_OK,
// every frame written separately (with Config.FrameGap between frames), UDP
// data datagrams of at most 1 024 bytes, exact event sizes, one event per
// packet.
package zksim

// Package fleet reads a fleet of ZKTeco devices (package zk) concurrently
// and publishes their punches to the raw stream, a heartbeat per session to
// the health stream, and records that do not decode to the dead-letter
// stream with their raw bytes.
//
// # Devices and sessions
//
// The devices come from a YAML fleet file (Parse): serial, address, port,
// transport, comm key (from an environment variable or a file, never the
// file itself), site, time zone, poll interval, mode and clear_after_read.
// A device is polled (ModePoll: a session every poll interval downloads the
// log) or live (ModeLive: a session stays open, realtime events are
// published as they come, and a bulk read reconciles on every connect and
// whenever the count disagrees with what the events showed).
//
// Every session connects (retrying transient failures with jittered
// backoff, never a refused comm key), checks the serial, measures the clock
// offset and the counts, reads the whole log inside zk.Client.WithDisabled
// (the device is enabled again whatever happens) and publishes what is new.
// Every punch carries the session's clock offset and its correlation id
// (the session's run id); heartbeats carry reachability, latency, the error
// class (timeout, refused, unauthorized, protocol, io, publish, internal),
// firmware, counts, capacity and clock offset.
//
// # Checkpoints
//
// The device has no incremental read. A device's Checkpoint (in the KV
// bucket, key StateKey) records how many records of its log were published
// and the identity of the first and last of them, never a time: device
// clocks jump. A log that still holds that identity at that position
// continues the checkpoint; a shorter log or another record there (a cleared
// log, refilled or not) is published whole again, which is safe because
// punch ids are message ids. With clear_after_read the log is cleared only
// after everything read was acknowledged by JetStream, inside the same
// disabled stretch as the read.
//
// # Backoff and circuit breaker
//
// A failed session is retried after a jittered exponential backoff (go-retry);
// consecutive failures open the device's circuit breaker (Breaker) for a
// cooldown that doubles after a failed trial. A refused comm key opens it at
// once, for long: retrying the same key cannot help. The breaker lives in
// the device's KV state, so it follows the device from replica to replica,
// and it closes when the device's settings change.
//
// # How replicas share a fleet
//
// The fleet stream (topology.Config.FleetStream) is a work queue that holds
// exactly one message per device, on fleet.<mode>.<serial>. Two durable pull
// consumers, <Consumer>_poll and <Consumer>_live, split it by mode; every
// replica pulls from both, only as many messages as it has free slots
// (Concurrency, MaxLive).
//
// Holding: the replica that received a device's message holds the device.
// JetStream delivers a message to one puller at a time and redelivers it
// only when it is negatively acknowledged or when AckWait (Lease) passes
// without an acknowledgement or a progress report. The holder reports
// progress every Lease/4 and waits for the server's answer; if it got none
// for 3/4 of the lease (counted from when the last answered report was
// sent), it cancels its session, lets go of the device and forgets the
// message, a quarter of the lease before the server can redeliver it. So a
// device is held by at most one replica at a time unless the holder's
// process stalls for more than a quarter of the lease without its timers
// firing. Two more guards make even that harmless: every write of the
// device's state is a compare-and-set on its KV revision (the second
// holder's write fails and its session stops before clearing anything), and
// every punch carries its id, so a punch published twice is stored once.
// TestReplicasSurviveAKill checks this with devices that refuse a second
// session.
//
// Scheduling: when a session ends, the holder negatively acknowledges the
// message with a delay (NakWithDelay): the poll interval (±5 %) after a
// success, the backoff or the breaker's cooldown after a failure. The
// message stays in the stream, and whichever replica has a free slot takes
// it when it is due. It is never acknowledged, so a device never leaves the
// queue.
//
// Failover: a replica that dies stops reporting progress; after the lease
// the server redelivers its devices to the others. A replica that stops
// gracefully cancels its sessions (devices are re-enabled) and hands its
// devices back after Handoff.
//
// Seeding: every replica publishes the message of every device of its fleet
// file at start. The stream keeps one message per subject and refuses a
// second (DiscardNewPerSubject), so seeding is idempotent whatever the
// duplicate window, and never resets a device's schedule. With Prune,
// messages of devices no longer in the file are deleted; all replicas are
// meant to share one fleet file (a replica that meets a device it does not
// know leaves it to the others).
package fleet

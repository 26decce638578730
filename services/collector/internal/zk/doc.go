// Package zk speaks the binary protocol of ZKTeco attendance terminals on port
// 4370, over TCP or UDP.
//
// The package has two layers. The pure layer encodes and decodes everything
// that crosses the wire and does no I/O: packet headers and checksums
// (header.go), TCP framing (frame.go), command codes (command.go), the comm-key
// derivation (commkey.go), the device's time encodings (timecode.go), bulk
// datasets (dataset.go), attendance records (attendance.go), users (user.go),
// realtime events (event.go) and option/size replies (info.go). The I/O layer
// is Client (client.go and the files next to it), one session with one device.
//
// Device times are local wall-clock times without a zone. They are returned as
// time.Time values in time.UTC whose fields (year … second) are the device's
// wall clock; they are not instants in UTC. Attach the device's configured
// zone downstream.
//
// Every decoded attendance record and user is validated. A record that fails
// is returned as a *RecordError carrying its index and raw bytes, so that the
// caller can dead-letter it; one bad record never aborts the others.
package zk

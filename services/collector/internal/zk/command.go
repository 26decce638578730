package zk

import "fmt"

// Command is the first field of every packet header: a request code sent by
// the client, a reply code sent by the device, or 500 in realtime event
// packets.
type Command uint16

// Request codes (client to device).
const (
	CmdOptionsRRQ    Command = 11   // read an option: "key\x00" → "key=value\x00"
	CmdOptionsWRQ    Command = 12   // write an option: "key=value"
	CmdAttLogRRQ     Command = 13   // attendance log; inner command of CmdPrepareBuffer, or a legacy direct read
	CmdUserTempRRQ   Command = 9    // users; inner command of CmdPrepareBuffer (FctUser), or a legacy direct read
	CmdClearData     Command = 14   // clear data; optional 1-byte type
	CmdClearAttLog   Command = 15   // clear the attendance log
	CmdGetFreeSizes  Command = 50   // counts and capacities
	CmdStartVerify   Command = 60   // back to verification mode
	CmdCancelCapture Command = 62   // cancel a capture in progress
	CmdGetPinWidth   Command = 69   // maximum user-id length (1-byte reply)
	CmdUnlock        Command = 31   // open the door for u32 (seconds × 10)
	CmdGetTime       Command = 201  // device clock, packed u32
	CmdSetTime       Command = 202  // set the device clock, packed u32
	CmdRegEvent      Command = 500  // register for realtime events (u32 mask); also the code of event packets
	CmdConnect       Command = 1000 // open a session
	CmdExit          Command = 1001 // close the session
	CmdEnableDevice  Command = 1002 // leave "working…" mode, accept punches again
	CmdDisableDevice Command = 1003 // stop accepting punches
	CmdRestart       Command = 1004 // reboot
	CmdPowerOff      Command = 1005 // power off
	CmdRefreshData   Command = 1013 // reload data after a change
	CmdGetVersion    Command = 1100 // firmware version string
	CmdAuth          Command = 1102 // comm-key authentication, 4 bytes from MakeCommKey
	CmdFreeData      Command = 1502 // release the buffer of a buffered read
	CmdPrepareBuffer Command = 1503 // _CMD_PREPARE_BUFFER (CMD_DATA_WRRQ): stage a dataset
	CmdReadBuffer    Command = 1504 // _CMD_READ_BUFFER (CMD_DATA_RDY): read (start, size) of the staged dataset
)

// Reply codes (device to client). CmdPrepareData and CmdData also frame data
// transfers.
const (
	CmdPrepareData  Command = 1500   // announces a data transfer: u32 size, u32
	CmdData         Command = 1501   // carries data
	CmdAckOK        Command = 2000   // success
	CmdAckError     Command = 2001   // failure (unknown option, bad state)
	CmdAckData      Command = 2002   // data (rare)
	CmdAckRetry     Command = 2003   // "registered event occurred" per pyzk
	CmdAckRepeat    Command = 2004   // repeat
	CmdAckUnauth    Command = 2005   // session not authorised: comm key needed or wrong
	CmdAckUnknown   Command = 0xFFFF // unknown command
	CmdAckErrorCmd  Command = 0xFFFD // command error
	CmdAckErrorInit Command = 0xFFFC // not initialised (no session)
	CmdAckErrorData Command = 0xFFFB // data error
)

// Function selectors (the fct field of CmdPrepareBuffer).
const (
	FctAttLog    uint32 = 1
	FctFingerTmp uint32 = 2
	FctOpLog     uint32 = 4
	FctUser      uint32 = 5
	FctSMS       uint32 = 6
	FctUData     uint32 = 7
	FctWorkCode  uint32 = 8
)

// Data types of CmdClearData. Without data the device clears everything.
const (
	ClearAttLogs  byte = 1
	ClearTemplate byte = 2
	ClearOpLog    byte = 4
	ClearUsers    byte = 5
)

// Realtime event flags: the CmdRegEvent mask bits, and the session field of
// event packets.
const (
	EventAttLog       uint16 = 1
	EventFinger       uint16 = 2
	EventEnrollUser   uint16 = 4
	EventEnrollFinger uint16 = 8
	EventButton       uint16 = 16
	EventUnlock       uint16 = 32
	EventVerify       uint16 = 128
	EventFPFtr        uint16 = 256
	EventAlarm        uint16 = 512
)

var commandNames = map[Command]string{
	CmdOptionsRRQ:    "CMD_OPTIONS_RRQ",
	CmdOptionsWRQ:    "CMD_OPTIONS_WRQ",
	CmdAttLogRRQ:     "CMD_ATTLOG_RRQ",
	CmdUserTempRRQ:   "CMD_USERTEMP_RRQ",
	CmdClearData:     "CMD_CLEAR_DATA",
	CmdClearAttLog:   "CMD_CLEAR_ATTLOG",
	CmdGetFreeSizes:  "CMD_GET_FREE_SIZES",
	CmdStartVerify:   "CMD_STARTVERIFY",
	CmdCancelCapture: "CMD_CANCELCAPTURE",
	CmdGetPinWidth:   "CMD_GET_PINWIDTH",
	CmdUnlock:        "CMD_UNLOCK",
	CmdGetTime:       "CMD_GET_TIME",
	CmdSetTime:       "CMD_SET_TIME",
	CmdRegEvent:      "CMD_REG_EVENT",
	CmdConnect:       "CMD_CONNECT",
	CmdExit:          "CMD_EXIT",
	CmdEnableDevice:  "CMD_ENABLEDEVICE",
	CmdDisableDevice: "CMD_DISABLEDEVICE",
	CmdRestart:       "CMD_RESTART",
	CmdPowerOff:      "CMD_POWEROFF",
	CmdRefreshData:   "CMD_REFRESHDATA",
	CmdGetVersion:    "CMD_GET_VERSION",
	CmdAuth:          "CMD_AUTH",
	CmdFreeData:      "CMD_FREE_DATA",
	CmdPrepareBuffer: "CMD_PREPARE_BUFFER",
	CmdReadBuffer:    "CMD_READ_BUFFER",
	CmdPrepareData:   "CMD_PREPARE_DATA",
	CmdData:          "CMD_DATA",
	CmdAckOK:         "CMD_ACK_OK",
	CmdAckError:      "CMD_ACK_ERROR",
	CmdAckData:       "CMD_ACK_DATA",
	CmdAckRetry:      "CMD_ACK_RETRY",
	CmdAckRepeat:     "CMD_ACK_REPEAT",
	CmdAckUnauth:     "CMD_ACK_UNAUTH",
	CmdAckUnknown:    "CMD_ACK_UNKNOWN",
	CmdAckErrorCmd:   "CMD_ACK_ERROR_CMD",
	CmdAckErrorInit:  "CMD_ACK_ERROR_INIT",
	CmdAckErrorData:  "CMD_ACK_ERROR_DATA",
}

// String returns the protocol name of c, such as "CMD_CONNECT", or
// "CMD(1234)" for codes this package does not name.
func (c Command) String() string {
	if n, ok := commandNames[c]; ok {
		return n
	}
	return fmt.Sprintf("CMD(%d)", uint16(c))
}

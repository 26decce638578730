// Interop driver: reads a (simulated) ZKTeco device with one of the published
// Node clients and prints what the library returned as one JSON document on
// stdout. The Go test in this folder (interop_test.go) starts the device,
// runs this script and compares the output field by field.
//
//   node driver.js <lib> read     <host> <port>
//   node driver.js <lib> live     <host> <port> <events>
//   node driver.js <lib> settime  <host> <port> <YYYY-MM-DDTHH:MM:SS>
//
// <lib> is "node-zklib" (1.3.0) or "zkteco-js" (1.7.2), found through
// NODE_PATH. Library values are printed as the library returns them; Dates
// become ISO strings, which equal the device's wall clock only because the
// test runs node with TZ=UTC (both libraries build local-time Dates from the
// zone-less device time). The libraries log with console.log and into
// "<ddmmyyyy>.err.log" in the working directory, so the test runs this script
// in a scratch directory and console.log is sent to stderr here.

'use strict'

// out writes v and resolves once the bytes are handed over: process.exit
// right after an unfinished write to a pipe would cut the output.
const out = (v) => new Promise((resolve) => process.stdout.write(JSON.stringify(v) + '\n', resolve))
console.log = (...a) => console.error(...a)

const [lib, mode, host, portText, arg] = process.argv.slice(2)
const port = Number(portText)
if (!['node-zklib', 'zkteco-js'].includes(lib) || !['read', 'live', 'settime'].includes(mode) || !host || !port) {
  console.error('usage: node driver.js node-zklib|zkteco-js read|live|settime HOST PORT [ARG]')
  process.exit(2)
}
const Lib = require(lib)
const timeout = 10000

// errText flattens the error shapes of both libraries (Error, ZKError with
// .err, zkteco-js ZkError with .err) into one line.
const errText = (e) => {
  if (e == null) return null
  if (e.err) return `${e.command || ''} ${errText(e.err)}`.trim()
  return e.message || String(e)
}

async function read (dev) {
  const res = { lib, info: await dev.getInfo() }
  if (lib === 'zkteco-js') {
    res.serialNumber = await dev.getSerialNumber()
    res.platform = await dev.getPlatform()
    res.deviceName = await dev.getDeviceName()
    res.mac = await dev.getMacAddress()
    res.firmware = await dev.getFirmware()
    res.vendor = await dev.getVendor()
    res.pinWidth = await dev.getPIN()
    res.fpVersion = await dev.getDeviceVersion()
    res.attendanceSize = await dev.getAttendanceSize()
    res.time = await dev.getTime()
  }
  await dev.disableDevice()
  const users = await dev.getUsers()
  res.users = users.data
  res.usersErr = errText(users.err)
  const att = await dev.getAttendances()
  res.attendances = att.data
  res.attendancesErr = errText(att.err)
  await dev.enableDevice()
  return res
}

// live registers for realtime events and returns after n events, or with
// what arrived when 20 s pass.
function live (dev, n) {
  return new Promise((resolve) => {
    const events = []
    const timer = setTimeout(() => resolve({ lib, events, err: `timed out after ${events.length} of ${n} events` }), 20000)
    dev.getRealTimeLogs((ev) => {
      events.push(ev)
      if (events.length === n) {
        clearTimeout(timer)
        resolve({ lib, events, err: null })
      }
    })
  })
}

async function setTime (dev, text) {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})$/.exec(text || '')
  if (!m) throw new Error(`settime wants YYYY-MM-DDTHH:MM:SS, got ${text}`)
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number)
  if (lib !== 'zkteco-js') throw new Error('node-zklib 1.3.0 has no setTime')
  await dev.setTime(new Date(y, mo - 1, d, h, mi, s))
  return { lib, time: await dev.getTime() }
}

async function main () {
  const dev = new Lib(host, port, timeout, 0)
  await dev.createSocket()
  let res
  switch (mode) {
    case 'read': res = await read(dev); break
    case 'live': res = await live(dev, Number(arg)); break
    case 'settime': res = await setTime(dev, arg); break
  }
  await dev.disconnect()
  await out(res)
}

main().then(
  // The libraries leave timers and listeners behind (node-zklib never
  // removes its chunk listener), so exit explicitly.
  () => process.exit(0),
  (e) => { console.error(`${lib} ${mode} failed: ${errText(e)}`); process.exit(1) }
)

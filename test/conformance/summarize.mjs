// Summarizes a results file of the http-cache-tests command-line client
// (the JSON `npm run cli` prints) the way the suite's own display judges
// each test (lib/display.mjs determineTestResult, which needs a browser):
//
//   required (kind "required" or none): pass, or a required failure
//   optimal:  pass, or an optional failure
//   check:    informational (yes / no), never a failure
//   a test whose dependency did not pass: not judged ("dependency")
//   a failure while setting up a test (the cache did not store what the
//   test needs to go on): "setup", not a failure, counted apart
//   a test the client did not run: "untested"
//
// A required test listed in KNOWN (id, then the reason) is one whose
// expectation contradicts RFC 9111: its failure is named in the summary
// line, not counted as a required failure.
//
// Usage: node summarize.mjs SUITE_DIR RESULTS.json KNOWN [FAILURES.txt]
// Prints one summary line; writes one line per test that did not pass to
// FAILURES.txt (when given); exits 1 when a required test failed.
import fs from 'fs'
import path from 'path'
import { pathToFileURL } from 'url'

const [suiteDir, resultsFile, knownFile, failuresFile] = process.argv.slice(2)
if (!suiteDir || !resultsFile || !knownFile) {
  console.error('usage: node summarize.mjs SUITE_DIR RESULTS.json KNOWN [FAILURES.txt]')
  process.exit(2)
}
const known = new Map()
for (const line of fs.readFileSync(knownFile, 'utf8').split('\n')) {
  const m = line.match(/^([\w-]+)\s+(.*)$/)
  if (m && !line.startsWith('#')) known.set(m[1], m[2])
}
const load = async rel => (await import(pathToFileURL(path.join(suiteDir, rel)).href)).default
const suites = [...await load('tests/index.mjs'), await load('tests/surrogate-control.mjs')]
const results = JSON.parse(fs.readFileSync(resultsFile, 'utf8'))

const byId = new Map()
for (const suite of suites) for (const t of suite.tests) byId.set(t.id, t)

const memo = new Map()
function judge (id) {
  if (memo.has(id)) return memo.get(id)
  const t = byId.get(id)
  const r = results[id]
  let v
  if (r === undefined) {
    v = 'untested'
  } else if ((t.depends_on || []).some(d => !['pass', 'yes'].includes(judge(d)))) {
    v = 'dependency'
  } else if (Array.isArray(r) && r[0] === 'Setup') {
    v = r[1] === 'retry' ? 'retry' : 'setup'
  } else if (t.kind === 'optimal') {
    v = r === true ? 'pass' : 'optional_fail'
  } else if (t.kind === 'check') {
    v = r === true ? 'yes' : 'no'
  } else if (r === true) {
    v = 'pass'
  } else {
    v = known.has(id) ? 'known' : 'fail'
  }
  memo.set(id, v)
  return v
}

const count = {}
const failed = []
for (const id of byId.keys()) {
  const v = judge(id)
  count[v] = (count[v] || 0) + 1
  if (['fail', 'known', 'setup', 'retry', 'optional_fail'].includes(v)) {
    const r = results[id]
    const why = Array.isArray(r) ? r.slice(0, 2).join(': ') : String(r)
    const label = { fail: 'REQUIRED', known: 'known', setup: 'setup', retry: 'REQUIRED', optional_fail: 'optional' }[v]
    failed.push(`${label} ${id}: ${why}`)
  }
}
const n = k => count[k] || 0
const required = n('fail') + n('retry')
const extra = []
const knownFailed = [...known.keys()].filter(id => memo.get(id) === 'known')
if (knownFailed.length) extra.push(`${knownFailed.length} required failed as expected, the test contradicting RFC 9111: ${knownFailed.join(', ')}`)
const knownPassed = [...known.keys()].filter(id => memo.get(id) === 'pass')
if (knownPassed.length) extra.push(`now passing, remove from the known list: ${knownPassed.join(', ')}`)
extra.push(`${n('setup')} setup refused`, `${n('dependency')} not judged: a dependency did not pass`,
  `${n('yes') + n('no')} checks: ${n('yes')} yes, ${n('no')} no`)
if (n('untested')) {
  const browser = [...byId.values()].filter(t => memo.get(t.id) === 'untested' && t.browser_only).length
  extra.push(browser === n('untested') ? `${browser} not run: browser only` : `${n('untested')} not run`)
}
console.log(`http-cache-tests: ${n('pass')} passed, ${required} required failed, ${n('optional_fail')} optional failed (${extra.join('; ')})`)
failed.sort()
if (failuresFile) fs.writeFileSync(failuresFile, failed.map(f => f + '\n').join(''))
process.exit(required > 0 ? 1 : 0)

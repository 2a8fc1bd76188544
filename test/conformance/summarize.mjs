// Summarizes a results file of the http-cache-tests command-line client
// (the JSON `npm run cli` prints) the way the suite's own display judges
// each test (lib/display.mjs determineTestResult, which needs a browser):
//
//   required (kind "required" or none): pass, or a required failure
//   optimal:  pass, or an optional failure
//   check:    informational (yes / no), never a failure
//   a test whose dependency did not pass: not judged ("dependency")
//   a failure while setting up a test: "setup", counted as required
//   a test the client did not run: "untested"
//
// Usage: node summarize.mjs SUITE_DIR RESULTS.json [FAILURES.txt]
// Prints one summary line; writes one line per failed test to FAILURES.txt
// (when given); exits 1 when a required test failed.
import fs from 'fs'
import path from 'path'
import { pathToFileURL } from 'url'

const [suiteDir, resultsFile, failuresFile] = process.argv.slice(2)
if (!suiteDir || !resultsFile) {
  console.error('usage: node summarize.mjs SUITE_DIR RESULTS.json')
  process.exit(2)
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
  } else {
    v = r === true ? 'pass' : 'fail'
  }
  memo.set(id, v)
  return v
}

const count = {}
const failed = []
for (const id of byId.keys()) {
  const v = judge(id)
  count[v] = (count[v] || 0) + 1
  if (['fail', 'setup', 'retry', 'optional_fail'].includes(v)) {
    const r = results[id]
    const why = Array.isArray(r) ? r.slice(0, 2).join(': ') : String(r)
    failed.push(`  ${v === 'optional_fail' ? 'optional' : 'REQUIRED'} ${id}: ${why}`)
  }
}
const n = k => count[k] || 0
const required = n('fail') + n('setup') + n('retry')
const extra = [`${n('yes') + n('no')} checks: ${n('yes')} yes, ${n('no')} no`,
  `${n('dependency')} not judged: a dependency did not pass`]
if (n('setup') + n('retry')) extra.push(`${n('setup') + n('retry')} of the required failures in setup`)
if (n('untested')) extra.push(`${n('untested')} not run`)
console.log(`http-cache-tests: ${n('pass')} passed, ${required} required failed, ${n('optional_fail')} optional failed (${extra.join('; ')})`)
failed.sort()
if (failuresFile) fs.writeFileSync(failuresFile, failed.map(f => f + '\n').join(''))
process.exit(required > 0 ? 1 : 0)

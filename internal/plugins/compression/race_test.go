//go:build race

package compression

// raceEnabled reports whether the race detector is on: it makes the
// encoders some thirty times slower, so the longest streams are shortened.
const raceEnabled = true

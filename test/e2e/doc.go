// Package e2e holds Portico's black-box end-to-end tests. They build the
// portico binary once, run it as a separate process against configs written
// at test time, and talk to it over real sockets: real upstream HTTP servers
// on 127.0.0.1:0, real TLS, raw TCP where a client library would clean up
// what an attacker sends. Nothing inside the gateway is imported or mocked;
// the tests see only what a user sees: the listeners, the exit code, the
// access log on stdout and the gateway's own JSON log on stderr.
//
// Run them with:
//
//	go test -race ./test/e2e/
package e2e

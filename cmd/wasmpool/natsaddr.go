package main

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/wasmpool/wasmpool/cluster"
)

// hostError is a failure of this host or its network (a port, a
// connection), not of the module a command runs: its line does not name the
// module.
type hostError struct{ error }

func (e hostError) Unwrap() error { return e.error }

// checkListen checks a listen address before a server is started on it: a
// malformed one is a usage error, a port already taken is said at once (the
// NATS server would retry it for 30 seconds, then say only that it did not
// become ready). Port -1 asks for any free port; there is nothing to check.
func checkListen(flag, addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return usagef("%s %q: want HOST:PORT, such as :4222", flag, addr)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < -1 || n > 65535 {
		return usagef("%s %q: the port must be a number from 0 to 65535 (or -1: any free port)", flag, addr)
	}
	if n <= 0 {
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return hostError{fmt.Errorf("%s %s: cannot listen there: %w", flag, addr, cleanOpError(err))}
	}
	return ln.Close()
}

// cleanOpError drops the "listen tcp :4222:" the caller already says.
func cleanOpError(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Err
	}
	return err
}

// connectNATS is cluster.Connect with an error that reads as one line about
// the connection and never shows a token or password from the URL.
func connectNATS(urls, name string) (*nats.Conn, error) {
	nc, err := cluster.Connect(urls, name)
	if err != nil {
		cause := errors.Unwrap(err) // nats' own, without the URL
		if cause == nil {
			cause = errors.New(redactSecrets(err.Error(), urls))
		}
		return nil, hostError{fmt.Errorf("cannot connect to NATS at %s: %w", redactURLs(urls), cause)}
	}
	return nc, nil
}

// redactURLs hides the credentials of each URL of a comma-separated list:
// nats://TOKEN@host and nats://user:PASSWORD@host become nats://***@host and
// nats://user:***@host.
func redactURLs(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		parts[i] = redactURL(strings.TrimSpace(p))
	}
	return strings.Join(parts, ",")
}

func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		if i, j := strings.Index(s, "://"), strings.LastIndex(s, "@"); i >= 0 && j > i {
			return s[:i+3] + "***" + s[j:] // unparsable, but it has credentials
		}
		return s
	}
	who := "***"
	if _, hasPassword := u.User.Password(); hasPassword {
		who = u.User.Username() + ":***"
	}
	u.User = nil
	out := u.String()
	if i := strings.Index(out, "://"); i >= 0 {
		return out[:i+3] + who + "@" + out[i+3:]
	}
	return out
}

// redactSecrets removes every URL of urls, and its credentials, from s.
func redactSecrets(s, urls string) string {
	for _, u := range strings.Split(urls, ",") {
		u = strings.TrimSpace(u)
		if u == "" {
			continue
		}
		s = strings.ReplaceAll(s, u, redactURL(u))
		if pu, err := url.Parse(u); err == nil && pu.User != nil {
			if pw, ok := pu.User.Password(); ok && pw != "" {
				s = strings.ReplaceAll(s, pw, "***")
			} else if name := pu.User.Username(); name != "" {
				s = strings.ReplaceAll(s, name, "***")
			}
		}
	}
	return s
}

// noWorkerAfter is how long map and batch wait on a cluster before they say
// that no worker has taken a task: the queue keeps them, and a worker that
// joins later runs them, but a user watching a bar stuck at 0 should know why.
// (A variable only for the tests.)
var noWorkerAfter = 5 * time.Second

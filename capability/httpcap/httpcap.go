package httpcap

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/wasmpool/wasmpool/engine"
)

// Name is the capability's name, what a task grants (engine.Task.Grants) to
// let its guest make HTTP requests, with the hosts it may reach as its
// engine.Task.GrantArgs.
const Name = "http"

// Defaults of a Policy's zero fields.
const (
	DefaultMaxRequestBytes  = 1 << 20
	DefaultMaxResponseBytes = 16 << 20
	DefaultTimeout          = 30 * time.Second
	DefaultMaxRedirects     = 10
)

// Policy is what every request of the capability is held to. A host must
// match the policy's AllowHosts, when it has any, and the calling task's
// own patterns (its GrantArgs), when it has any: a task can narrow what the
// embedder allows, never widen it. With neither, no host is allowed.
type Policy struct {
	// AllowHosts are the hosts requests may go to: "api.example.com"
	// exactly, or "*.example.com" for any name under example.com (not
	// example.com itself), or an IP address. Ports are not part of a
	// pattern.
	AllowHosts []string
	// AllowPrivate lets an allowed host name resolve to a loopback, private,
	// link-local or unspecified address. Without it such a connection is
	// refused, wherever the name came from (a redirect, a DNS answer that
	// changed: rebinding): only a pattern that is that IP address itself
	// lets a request reach it.
	AllowPrivate bool
	// Methods allowed; nil means GET and HEAD.
	Methods []string
	// MaxRequestBytes caps a request's body; 0 means 1 MiB.
	MaxRequestBytes int64
	// MaxResponseBytes caps a response's body; 0 means 16 MiB. A response
	// over it fails the request rather than being cut.
	MaxResponseBytes int64
	// Timeout bounds each request, redirects and the reading of the body
	// included; 0 means 30s. The task's own deadline bounds it too.
	Timeout time.Duration
	// MaxRedirects a request may follow; 0 means 10, negative none.
	MaxRedirects int
	// Transport, if set, sends the requests instead of the capability's own
	// (for tests and proxies). The dial-time address check applies only to
	// the capability's own transport.
	Transport http.RoundTripper
}

// New returns the HTTP capability under policy p, to register on
// engine.Config.Capabilities. Its one function, "request", takes a request
// encoded as the guest SDK's guest.HTTP encodes it and returns the
// response likewise.
func New(p Policy) engine.Capability {
	c := &client{p: p.withDefaults()}
	rt := c.p.Transport
	if rt == nil {
		d := &net.Dialer{Timeout: 10 * time.Second, ControlContext: checkDial}
		rt = &http.Transport{
			Proxy:               nil, // never the environment's: the policy names where requests go
			DialContext:         d.DialContext,
			ForceAttemptHTTP2:   true,
			MaxIdleConns:        256,
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     90 * time.Second,
			TLSHandshakeTimeout: 10 * time.Second,
		}
	}
	c.hc = &http.Client{Transport: rt, CheckRedirect: c.checkRedirect}
	return engine.Capability{Name: Name, Funcs: map[string]engine.HostFunc{"request": c.request}}
}

func (p Policy) withDefaults() Policy {
	if p.Methods == nil {
		p.Methods = []string{http.MethodGet, http.MethodHead}
	}
	if p.MaxRequestBytes <= 0 {
		p.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if p.MaxResponseBytes <= 0 {
		p.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if p.Timeout <= 0 {
		p.Timeout = DefaultTimeout
	}
	if p.MaxRedirects == 0 {
		p.MaxRedirects = DefaultMaxRedirects
	}
	return p
}

type client struct {
	p  Policy
	hc *http.Client
}

// Request and Response are the capability's wire format, the JSON header
// of its input and output (see Encode and Decode).
type Request struct {
	Method string              `json:"method"`
	URL    string              `json:"url"`
	Header map[string][]string `json:"header,omitempty"`
}

type Response struct {
	Status int                 `json:"status"`
	Header map[string][]string `json:"header,omitempty"`
}

// Encode frames a JSON header and a body as the capability passes them:
// the header's length as 4 bytes little-endian, the header, the body.
func Encode(header any, body []byte) ([]byte, error) {
	h, err := json.Marshal(header)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 4, 4+len(h)+len(body))
	binary.LittleEndian.PutUint32(out, uint32(len(h)))
	return append(append(out, h...), body...), nil
}

// Decode reads what Encode wrote into header, and returns the body.
func Decode(in []byte, header any) ([]byte, error) {
	if len(in) < 4 {
		return nil, errors.New("http: the message is shorter than its header's length")
	}
	n := binary.LittleEndian.Uint32(in)
	if uint64(n) > uint64(len(in)-4) {
		return nil, errors.New("http: the message's header runs past its end")
	}
	if err := json.Unmarshal(in[4:4+n], header); err != nil {
		return nil, fmt.Errorf("http: bad message header: %w", err)
	}
	return in[4+n:], nil
}

// policyKey carries the task's patterns to the redirect and dial checks.
type policyKey struct{}

type taskPolicy struct {
	c    *client
	task []string // the task's patterns (GrantArgs)
}

func (c *client) request(ctx context.Context, in []byte) ([]byte, error) {
	var req Request
	body, err := Decode(in, &req)
	if err != nil {
		return nil, err
	}
	if req.Method == "" {
		req.Method = http.MethodGet
	}
	req.Method = strings.ToUpper(req.Method)
	if !slices.Contains(c.p.Methods, req.Method) {
		return nil, fmt.Errorf("http: method %s is not allowed (allowed: %s)", req.Method, strings.Join(c.p.Methods, ", "))
	}
	if int64(len(body)) > c.p.MaxRequestBytes {
		return nil, fmt.Errorf("http: the request body of %d bytes is over the %d-byte limit", len(body), c.p.MaxRequestBytes)
	}
	tp := &taskPolicy{c: c, task: engine.GrantArgs(ctx)}
	ctx, cancel := context.WithTimeout(context.WithValue(ctx, policyKey{}, tp), c.p.Timeout)
	defer cancel()
	hreq, err := http.NewRequestWithContext(ctx, req.Method, req.URL, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("http: %w", err)
	}
	if err := tp.checkURL(hreq); err != nil {
		return nil, err
	}
	for k, vs := range req.Header {
		for _, v := range vs {
			hreq.Header.Add(k, v)
		}
	}
	resp, err := c.hc.Do(hreq)
	if err != nil {
		return nil, c.requestError(ctx, err)
	}
	defer resp.Body.Close()
	if resp.ContentLength > c.p.MaxResponseBytes {
		return nil, c.overLimit(resp.Request.URL.Host)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, c.p.MaxResponseBytes+1))
	if err != nil {
		return nil, c.requestError(ctx, err)
	}
	if int64(len(data)) > c.p.MaxResponseBytes {
		return nil, c.overLimit(resp.Request.URL.Host)
	}
	return Encode(Response{Status: resp.StatusCode, Header: resp.Header}, data)
}

func (c *client) overLimit(host string) error {
	return fmt.Errorf("http: the response from %s is over the %d-byte limit", host, c.p.MaxResponseBytes)
}

// requestError says why a request failed in one sentence: the policy's
// refusal as it is, a timeout as a timeout.
func (c *client) requestError(ctx context.Context, err error) error {
	var pe *policyError
	if errors.As(err, &pe) {
		return pe
	}
	if errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
		return fmt.Errorf("http: the request timed out (limit %v, or the task's deadline)", c.p.Timeout)
	}
	return fmt.Errorf("http: %w", err)
}

// policyError is a request the policy refused.
type policyError struct{ msg string }

func (e *policyError) Error() string { return e.msg }

func (c *client) checkRedirect(req *http.Request, via []*http.Request) error {
	if c.p.MaxRedirects < 0 || len(via) > c.p.MaxRedirects {
		return &policyError{fmt.Sprintf("http: stopped after %d redirects", len(via))}
	}
	tp, _ := req.Context().Value(policyKey{}).(*taskPolicy)
	if tp == nil {
		return &policyError{"http: redirect outside a task"}
	}
	if !slices.Contains(c.p.Methods, req.Method) {
		return &policyError{fmt.Sprintf("http: a redirect to %s asks for method %s, which is not allowed", req.URL.Redacted(), req.Method)}
	}
	if err := tp.checkURL(req); err != nil {
		return &policyError{"http: redirect refused: " + strings.TrimPrefix(err.Error(), "http: ")}
	}
	return nil
}

func (tp *taskPolicy) checkURL(req *http.Request) error {
	u := req.URL
	if u.Scheme != "http" && u.Scheme != "https" {
		return &policyError{fmt.Sprintf("http: scheme %q is not allowed (http or https)", u.Scheme)}
	}
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	if !tp.allows(host) {
		return &policyError{fmt.Sprintf("http: host %q is not allowed (allowed: %s)", host, tp.describe())}
	}
	return nil
}

func (tp *taskPolicy) allows(host string) bool {
	emb, task := tp.c.p.AllowHosts, tp.task
	if len(emb) == 0 && len(task) == 0 {
		return false
	}
	return (len(emb) == 0 || matchAny(emb, host)) && (len(task) == 0 || matchAny(task, host))
}

func (tp *taskPolicy) describe() string {
	var parts []string
	if len(tp.c.p.AllowHosts) > 0 {
		parts = append(parts, strings.Join(tp.c.p.AllowHosts, ", "))
	}
	if len(tp.task) > 0 {
		parts = append(parts, strings.Join(tp.task, ", "))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "; and of those, ")
}

func matchAny(patterns []string, host string) bool {
	for _, p := range patterns {
		if Match(p, host) {
			return true
		}
	}
	return false
}

// Match reports whether host matches pattern: exactly (case aside), or, for
// "*.example.com", any name that ends in ".example.com".
func Match(pattern, host string) bool {
	pattern = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(pattern), "."))
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if pattern == "" || host == "" {
		return false
	}
	b, err := netip.ParseAddr(strings.Trim(host, "[]"))
	if err == nil {
		// An address is matched by that address only: "*.0.0.1" is a
		// pattern of names, not of 127.0.0.1.
		a, err := netip.ParseAddr(strings.Trim(pattern, "[]"))
		return err == nil && a.Unmap() == b.Unmap()
	}
	if suffix, ok := strings.CutPrefix(pattern, "*."); ok {
		return strings.HasSuffix(host, "."+suffix)
	}
	return pattern == host
}

// checkDial runs on the address actually being connected to, after DNS:
// where a name's answer is checked, whatever it said before (rebinding).
func checkDial(ctx context.Context, _, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return &policyError{fmt.Sprintf("http: cannot check the address %q", address)}
	}
	ip := ap.Addr().Unmap()
	if !restricted(ip) {
		return nil
	}
	tp, _ := ctx.Value(policyKey{}).(*taskPolicy)
	if tp == nil {
		return &policyError{"http: a connection outside a task"}
	}
	if tp.c.p.AllowPrivate {
		return nil
	}
	// Only a pattern that is this very address lets a request reach a
	// private one: a name that resolves there does not.
	lit := ip.String()
	if tp.allows(lit) && (matchLiteral(tp.c.p.AllowHosts, ip) || matchLiteral(tp.task, ip)) {
		return nil
	}
	return &policyError{fmt.Sprintf("http: the connection to %s is refused: a loopback, private or link-local address that no pattern names", address)}
}

func matchLiteral(patterns []string, ip netip.Addr) bool {
	for _, p := range patterns {
		if a, err := netip.ParseAddr(strings.Trim(strings.TrimSpace(p), "[]")); err == nil && a.Unmap() == ip {
			return true
		}
	}
	return false
}

func restricted(ip netip.Addr) bool {
	return ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsUnspecified() || ip.IsInterfaceLocalMulticast() ||
		// Carrier-grade NAT, 100.64.0.0/10: private in all but name.
		(ip.Is4() && ip.As4()[0] == 100 && ip.As4()[1]&0xc0 == 64)
}

// CheckPattern says what is wrong with a host pattern, or nil: a pattern is
// a host name, "*." and a domain, or an IP address, with no scheme, port or
// path.
func CheckPattern(p string) error {
	host := strings.TrimPrefix(p, "*.")
	switch {
	case strings.TrimSpace(p) == "" || host == "":
		return fmt.Errorf("host pattern %q is empty", p)
	case strings.Contains(host, "*"):
		return fmt.Errorf("host pattern %q: a wildcard may only begin it, as in *.example.com", p)
	case strings.ContainsAny(host, "/@?# "):
		return fmt.Errorf("host pattern %q: a host name, not a URL (no scheme, path or port)", p)
	}
	if _, err := netip.ParseAddr(strings.Trim(host, "[]")); err != nil && strings.Contains(host, ":") {
		return fmt.Errorf("host pattern %q: a host name, not a URL (no scheme, path or port)", p)
	}
	return nil
}

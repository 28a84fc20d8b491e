package embedded

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// ServerConfig configures an embedded NATS server with JetStream.
type ServerConfig struct {
	// StoreDir is where JetStream keeps streams on disk: queued tasks
	// survive a restart of the server on the same directory. "" uses a
	// temporary directory, removed at Shutdown.
	StoreDir string
	// Listen is the address clients on other hosts connect to, such as
	// ":4222" or "127.0.0.1:-1" (a port chosen by the system). "" opens no
	// port: only in-process connections (Connect) reach the server.
	Listen string
	// Token, if set, is required of every client that connects over the
	// network: they give it in the URL, nats://TOKEN@host:port.
	Token string
	// Name names the server in NATS monitoring. "" means "wasmpool".
	Name string
	// Monitor is the address of NATS's own HTTP monitoring endpoints
	// (/varz, /jsz, /connz...: what NATS tools and dashboards read), such
	// as "127.0.0.1:8222" or "127.0.0.1:-1" (a port chosen by the system).
	// "" serves none. They need no token: bind them where only operators
	// reach.
	Monitor string
}

// Server is a NATS server with JetStream running inside this process.
type Server struct {
	cfg    ServerConfig
	opts   server.Options
	tmpDir string

	mu  sync.Mutex
	srv *server.Server
}

// StartServer starts a server and waits until it accepts connections.
func StartServer(cfg ServerConfig) (*Server, error) {
	s := &Server{cfg: cfg}
	opts := server.Options{
		ServerName:    cfg.Name,
		JetStream:     true,
		StoreDir:      cfg.StoreDir,
		DontListen:    cfg.Listen == "",
		NoLog:         true,
		NoSigs:        true,
		Authorization: cfg.Token,
	}
	if opts.ServerName == "" {
		opts.ServerName = "wasmpool"
	}
	if cfg.Listen != "" {
		var err error
		if opts.Host, opts.Port, err = hostPort("listen", cfg.Listen, ":4222"); err != nil {
			return nil, err
		}
	}
	if cfg.Monitor != "" {
		var err error
		if opts.HTTPHost, opts.HTTPPort, err = hostPort("monitor", cfg.Monitor, "127.0.0.1:8222"); err != nil {
			return nil, err
		}
	}
	if opts.StoreDir == "" {
		dir, err := os.MkdirTemp("", "wasmpool-nats-")
		if err != nil {
			return nil, fmt.Errorf("embedded: %w", err)
		}
		s.tmpDir, opts.StoreDir = dir, dir
	}
	s.opts = opts
	srv, err := s.start()
	if err != nil {
		s.removeTmp()
		return nil, err
	}
	s.srv = srv
	if cfg.Listen != "" {
		// A restart listens where the first start did, so clients find it.
		s.opts.Port = srv.Addr().(*net.TCPAddr).Port
	}
	if a := srv.MonitorAddr(); a != nil {
		s.opts.HTTPPort = a.Port
	}
	return s, nil
}

// hostPort splits a listen address for the server's options: port 0 or -1
// is any free port, no host is every interface.
func hostPort(what, addr, example string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("embedded: %s address %q: want HOST:PORT, such as %s or 127.0.0.1:-1", what, addr, example)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < -1 || port > 65535 {
		return "", 0, fmt.Errorf("embedded: %s address %q: bad port %q", what, addr, p)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	if host == "" {
		host = "0.0.0.0"
	}
	return host, port, nil
}

func (s *Server) start() (*server.Server, error) {
	opts := s.opts // the server keeps and changes its copy
	srv, err := server.NewServer(&opts)
	if err != nil {
		return nil, fmt.Errorf("embedded: %w", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, errors.New("embedded: the NATS server did not become ready within 30s")
	}
	if !srv.JetStreamEnabled() {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("embedded: JetStream did not start (store directory %s)", s.opts.StoreDir)
	}
	return srv, nil
}

// ClientURL is the URL clients on other hosts connect to (with the token,
// if there is one), or "" if the server does not listen. A server listening
// on all interfaces reports this host's name.
func (s *Server) ClientURL() string {
	if s.cfg.Listen == "" {
		return ""
	}
	host := s.opts.Host
	if host == "0.0.0.0" || host == "::" {
		if h, err := os.Hostname(); err == nil {
			host = h
		}
	}
	u := url.URL{Scheme: "nats", Host: net.JoinHostPort(host, strconv.Itoa(s.opts.Port))}
	if s.cfg.Token != "" {
		u.User = url.User(s.cfg.Token)
	}
	return u.String()
}

// MonitorURL is where NATS's monitoring endpoints are served
// (http://HOST:PORT, with /varz, /jsz and the others under it), or "" with
// no ServerConfig.Monitor.
func (s *Server) MonitorURL() string {
	if s.cfg.Monitor == "" {
		return ""
	}
	host := s.opts.HTTPHost
	if host == "0.0.0.0" || host == "::" {
		if h, err := os.Hostname(); err == nil {
			host = h
		}
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(s.opts.HTTPPort))
}

// Connect opens an in-process connection to the server: no network, no
// port. The connection follows Restart: it reconnects to the new server.
func (s *Server) Connect(name string, opts ...nats.Option) (*nats.Conn, error) {
	base := []nats.Option{
		nats.InProcessServer(inProcess{s}),
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(50 * time.Millisecond),
	}
	if s.cfg.Token != "" {
		base = append(base, nats.Token(s.cfg.Token))
	}
	nc, err := nats.Connect("", append(base, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("embedded: %w", err)
	}
	return nc, nil
}

// inProcess gives each (re)connection a pipe to the server running now.
type inProcess struct{ s *Server }

func (p inProcess) InProcessConn() (net.Conn, error) {
	p.s.mu.Lock()
	srv := p.s.srv
	p.s.mu.Unlock()
	if srv == nil || !srv.Running() {
		return nil, errors.New("embedded: the NATS server is not running")
	}
	return srv.InProcessConn()
}

// Restart stops the server and starts it again on the same store directory
// and address, as a crash and restart would: clients reconnect, and what
// was stored on disk is there again (memory streams are not).
func (s *Server) Restart() error {
	s.mu.Lock()
	old := s.srv
	s.srv = nil
	s.mu.Unlock()
	if old != nil {
		old.Shutdown()
		old.WaitForShutdown()
	}
	srv, err := s.start()
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.srv = srv
	s.mu.Unlock()
	return nil
}

// Shutdown stops the server, and removes its store if it was temporary.
func (s *Server) Shutdown() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
	}
	s.removeTmp()
}

func (s *Server) removeTmp() {
	if s.tmpDir != "" {
		_ = os.RemoveAll(s.tmpDir)
	}
}

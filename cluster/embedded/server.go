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
		host, port, err := net.SplitHostPort(cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("embedded: listen address %q: want HOST:PORT, such as :4222 or 127.0.0.1:-1", cfg.Listen)
		}
		if opts.Port, err = strconv.Atoi(port); err != nil || opts.Port < -1 || opts.Port > 65535 {
			return nil, fmt.Errorf("embedded: listen address %q: bad port %q", cfg.Listen, port)
		}
		if opts.Port == 0 {
			opts.Port = server.RANDOM_PORT
		}
		opts.Host = host
		if host == "" {
			opts.Host = "0.0.0.0"
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
	return s, nil
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

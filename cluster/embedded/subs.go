package embedded

import "github.com/nats-io/nats-server/v2/server"

// Subscriptions counts the clients' subscriptions a message published to
// subject would reach: with cluster.WorkerSubject, the cluster's workers
// connected to this server (a client subscribed to a wildcard such as ">"
// counts too). It is 0 while the server is not running.
func (s *Server) Subscriptions(subject string) (int, error) {
	s.mu.Lock()
	srv := s.srv
	s.mu.Unlock()
	if srv == nil || !srv.Running() {
		return 0, nil
	}
	sz, err := srv.Subsz(&server.SubszOptions{Subscriptions: true, Test: subject, Limit: 1})
	if err != nil {
		return 0, err
	}
	return sz.Total, nil
}

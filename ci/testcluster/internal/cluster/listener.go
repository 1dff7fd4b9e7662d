package cluster

import (
	"errors"
	"net"
	"sync"
	"time"
)

// multiListener serves kube-apiserver on more than one address: the loopback
// listener it starts with, and addresses added later (the real node's bridge
// gateway, so its pods reach the API server through the kubernetes Service).
// kube-apiserver takes a single net.Listener; this is it.
type multiListener struct {
	base  net.Listener
	conns chan net.Conn
	done  chan struct{}

	mu     sync.Mutex
	closed bool
	extra  []net.Listener
}

func newMultiListener(base net.Listener) *multiListener {
	m := &multiListener{base: base, conns: make(chan net.Conn), done: make(chan struct{})}
	go m.serve(base)
	return m
}

func (m *multiListener) serve(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Temporary (e.g. out of file descriptors): back off like net/http.
			select {
			case <-m.done:
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		select {
		case m.conns <- c:
		case <-m.done:
			c.Close()
			return
		}
	}
}

// Listen adds a listener on ip (any free port) and returns its port.
func (m *multiListener) Listen(ip string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		l.Close()
		return 0, net.ErrClosed
	}
	m.extra = append(m.extra, l)
	go m.serve(l)
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Unlisten closes the listener added for ip, if any.
func (m *multiListener) Unlisten(ip string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	keep := m.extra[:0]
	for _, l := range m.extra {
		if l.Addr().(*net.TCPAddr).IP.String() == ip {
			l.Close()
			continue
		}
		keep = append(keep, l)
	}
	m.extra = keep
}

func (m *multiListener) Accept() (net.Conn, error) {
	select {
	case c := <-m.conns:
		return c, nil
	case <-m.done:
		return nil, net.ErrClosed
	}
}

func (m *multiListener) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	close(m.done)
	for _, l := range m.extra {
		l.Close()
	}
	return m.base.Close()
}

// Addr is the loopback address (the one in every kubeconfig).
func (m *multiListener) Addr() net.Addr { return m.base.Addr() }

package cluster

import (
	"io"
	"net"
	"strconv"
	"testing"
)

func TestMultiListenerAcceptsOnAddedAddresses(t *testing.T) {
	base, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := newMultiListener(base)
	defer m.Close()
	go func() {
		for {
			c, err := m.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte(c.LocalAddr().String()))
			c.Close()
		}
	}()
	dial := func(addr string) (string, error) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return "", err
		}
		defer c.Close()
		b, err := io.ReadAll(c)
		return string(b), err
	}
	if got, err := dial(base.Addr().String()); err != nil || got != base.Addr().String() {
		t.Fatalf("loopback: %q, %v", got, err)
	}
	port, err := m.Listen("127.0.0.2")
	if err != nil {
		t.Skipf("no 127.0.0.2 on this machine: %v", err)
	}
	extra := net.JoinHostPort("127.0.0.2", strconv.Itoa(port))
	if got, err := dial(extra); err != nil || got != extra {
		t.Fatalf("added address: %q, %v", got, err)
	}
	m.Unlisten("127.0.0.2")
	if _, err := net.Dial("tcp", extra); err == nil {
		t.Fatal("still accepting after Unlisten")
	}
	if m.Addr().String() != base.Addr().String() {
		t.Fatalf("Addr %s, want the loopback one", m.Addr())
	}
	m.Close()
	if _, err := m.Accept(); err == nil {
		t.Fatal("Accept after Close succeeded")
	}
	if _, err := m.Listen("127.0.0.1"); err == nil {
		t.Fatal("Listen after Close succeeded")
	}
}

package gateway

import (
	"net"
	"strconv"
	"testing"
)

// An address whose listener port another process holds is skipped, and the
// claimed address comes back with its port already bound.
func TestClaimAddressSkipsAddressesInUse(t *testing.T) {
	held, err := net.Listen("tcp", "127.2.0.1:0")
	if err != nil {
		t.Skipf("cannot bind 127.2.0.1 here: %v", err)
	}
	defer held.Close()
	port := held.Addr().(*net.TCPAddr).Port
	spec := gatewaySpec{Listeners: []listener{
		{Name: "http", Protocol: "HTTP", Port: int32(port)},
		{Name: "tls", Protocol: "HTTPS", Port: 443},
	}}

	c := &controller{}
	ip, bound := c.claimAddress(spec)
	if ip != "127.2.0.2" {
		t.Fatalf("claimed %s, want 127.2.0.2 (127.2.0.1:%d is in use)", ip, port)
	}
	ln := bound[int32(port)]
	if ln == nil || len(bound) != 1 {
		t.Fatalf("bound listeners %v, want only port %d", bound, port)
	}
	defer ln.Close()
	if _, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port))); err == nil {
		t.Fatalf("%s:%d was not held by the claim", ip, port)
	}
	if c.nextIP != 2 {
		t.Fatalf("nextIP %d, want 2", c.nextIP)
	}
}

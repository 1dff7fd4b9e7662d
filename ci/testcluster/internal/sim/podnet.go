package sim

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"os/exec"
	"strings"
)

// PodCIDR is the pod network of simulated nodes when it can be made local:
// the RFC 2544 benchmarking range, which no real network routes. Loopback
// pod addresses are refused by Endpoints validation and by the API server's
// proxy, so Services of simulated pods only get endpoints, and the service
// proxy only reaches processes listening on pod addresses, from this range.
const PodCIDR = "198.18.0.0/15"

const (
	podBlocks    = 256 // per-node blocks of PodCIDR
	podBlockSize = 512 // addresses per block (.0 and the last are not handed out)
)

// podNetwork hands out pod addresses from PodCIDR: node blocks are offset by
// a per-cluster salt, so clusters sharing a host rarely share addresses.
type podNetwork struct {
	base uint32
	salt uint32
}

// EnablePodNetwork gives pods of simulated nodes addresses from PodCIDR,
// after making the range local (`ip route add local PodCIDR dev lo`, which
// needs CAP_NET_ADMIN). The route is shared by every cluster on the host and
// left in place on exit. When the range cannot be made local (no privilege,
// no `ip`, or the host already routes it elsewhere) it returns why, and pods
// keep loopback addresses. Call before RunPods.
func (s *Simulator) EnablePodNetwork(ctx context.Context) error {
	if err := ensureLocalRoute(ctx, PodCIDR); err != nil {
		return err
	}
	_, cidr, _ := net.ParseCIDR(PodCIDR)
	s.podNet = &podNetwork{base: binary.BigEndian.Uint32(cidr.IP.To4()), salt: rand.Uint32N(podBlocks)}
	return nil
}

// addr is the address number n (1..podBlockSize-2) of node index i's block.
func (p *podNetwork) addr(i, n int) string {
	block := (p.salt + uint32(i)) % podBlocks
	v := p.base + block*podBlockSize + uint32(n)
	ip := make(net.IP, 4)
	binary.BigEndian.PutUint32(ip, v)
	return ip.String()
}

// allocPodIP returns the next pod address of node n.
func (s *Simulator) allocPodIP(n *node) string {
	if s.podNet == nil {
		return n.allocPodIP()
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.nextIP = n.nextIP%(podBlockSize-2) + 1
	return s.podNet.addr(n.index, n.nextIP)
}

// ensureLocalRoute makes cidr local on lo unless that route exists already;
// any other route within cidr means the host uses the range, and it is left alone.
func ensureLocalRoute(ctx context.Context, cidr string) error {
	out, err := exec.CommandContext(ctx, "ip", "-4", "route", "show", "table", "all", "root", cidr).CombinedOutput()
	if err != nil {
		return fmt.Errorf("listing routes in %s: %v: %s", cidr, err, strings.TrimSpace(string(out)))
	}
	ours := "local " + cidr + " dev lo"
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		switch {
		case line == "":
		case strings.HasPrefix(line, ours):
			return nil
		default:
			return fmt.Errorf("the host already routes %s (%s)", cidr, line)
		}
	}
	out, err = exec.CommandContext(ctx, "ip", "-4", "route", "add", "local", cidr, "dev", "lo").CombinedOutput()
	if err != nil && !strings.Contains(string(out), "File exists") {
		return fmt.Errorf("ip route add local %s dev lo: %v: %s", cidr, err, strings.TrimSpace(string(out)))
	}
	return nil
}

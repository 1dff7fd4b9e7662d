package sim

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"os/exec"
	"strings"

	"aiconform.dev/testcluster/internal/podruntime"
)

const (
	podBlocks    = 256 // per-node blocks of podruntime.PodCIDR, the pod network
	podBlockSize = 512 // addresses per block (.0 and the last are not handed out)
)

// podNetwork hands out pod addresses from podruntime.PodCIDR: node blocks
// are offset by a per-cluster salt, so clusters sharing a host rarely share
// addresses.
type podNetwork struct {
	base uint32
	salt uint32
}

// EnablePodNetwork gives pods of simulated nodes addresses from
// podruntime.PodCIDR, after making the range local (`ip route add local
// PodCIDR dev lo`, which needs CAP_NET_ADMIN). The route is shared by every cluster on the host and
// left in place on exit. When the range cannot be made local (no privilege,
// no `ip`, or the host already routes it elsewhere) it returns why, and pods
// keep loopback addresses. Call before RunPods.
func (s *Simulator) EnablePodNetwork(ctx context.Context) error {
	if err := ensureLocalRoute(ctx, podruntime.PodCIDR); err != nil {
		return err
	}
	_, cidr, _ := net.ParseCIDR(podruntime.PodCIDR)
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

// EnablePodNetns gives every process-runtime pod its own network namespace
// when podruntime.RuntimeOptions.PodNetns asks for it (nil otherwise). It needs root,
// `ip` and the pod network (EnablePodNetwork); it returns why not, and pods
// then keep sharing the host's namespace. Call before RunPods.
func (s *Simulator) EnablePodNetns(ctx context.Context) error {
	if s.rt == nil {
		return nil
	}
	src := ""
	if s.podNet != nil {
		src = s.podNet.addr(0, 0)
	}
	return s.rt.EnablePodNetns(ctx, src)
}

// Podnet returns the podnet namespace, through which every pod with a
// namespace of its own reaches anything; false without --pod-netns.
func (s *Simulator) Podnet() (podruntime.Podnet, bool) { return s.rt.Podnet() }

// LoadBalancerAddress returns the n-th address (n from 0) of the block the
// pod network keeps for load balancers (the block before node 0's, which only
// a cluster of 256 nodes or more would hand to pods), and false when pods do
// not have namespaces of their own: then the loopback addresses stand-ins use
// are reachable from every pod, and stay. Pods in namespaces of their own
// reach these addresses over their uplink, the host's own processes as local
// ones, like a LoadBalancer IP.
func (s *Simulator) LoadBalancerAddress(n int) (string, bool) {
	if _, ok := s.Podnet(); s.podNet == nil || !ok || n < 0 || n >= podBlockSize-2 {
		return "", false
	}
	return s.podNet.addr(podBlocks-1, n+1), true
}

package podruntime

import (
	"context"
	"encoding/binary"
	"fmt"
	"maps"
	"net"
	"testing"

	resourcev1 "k8s.io/api/resource/v1"
	"k8s.io/client-go/kubernetes"

	"aiconform.dev/testcluster/internal/profile"
)

// Helpers shared by the runtime's tests: a stand-in for the simulator
// (internal/sim, which imports this package) and for its pod network.

// fakeSim stands in for the simulator: the nodes of the h100-sxm profile
// as it names and addresses them (system-0, gpu-0, gpu-1), the API client
// of their kubelets and the devices of host.
type fakeSim struct {
	nodes  map[string]Node
	client kubernetes.Interface
	host   testHost
}

func testSim(t *testing.T) *fakeSim {
	t.Helper()
	p, err := profile.Load("h100-sxm")
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeSim{nodes: map[string]Node{}}
	idx := 0
	for pi := range p.Pools {
		pl := &p.Pools[pi]
		for i := 0; i < pl.Count; i++ {
			s.nodes[pl.NodeName(i)] = Node{Name: pl.NodeName(i), IP: fmt.Sprintf("127.1.%d.%d", idx/250, idx%250+1), Pool: pl}
			idx++
		}
	}
	return s
}

// SetRuntime attaches rt as the simulator does (kubelet version v1.34.4).
func (s *fakeSim) SetRuntime(rt *Runtime) { rt.Attach(&s.host, s.client, "v1.34.4") }

// testHost is a Host with fixed devices.
type testHost struct {
	vgpus     map[int]string              // every node's vGPU device minors -> UUIDs
	claims    map[string]map[string][]int // claim name -> request -> device minors on any node
	replicas  int
	exclusive bool
}

func (h *testHost) VGPUDevices(string) map[int]string { return maps.Clone(h.vgpus) }

func (h *testHost) ClaimDevices(claim *resourcev1.ResourceClaim, _ string) map[string][]int {
	out := map[string][]int{}
	for req, idx := range h.claims[claim.Name] {
		out[req] = append([]int(nil), idx...)
	}
	return out
}

func (h *testHost) TimeSlicing(string) (int, bool) { return h.replicas, h.exclusive }

// testPodNet stands in for the simulator's pod network: PodCIDR local on
// the (scratch) host, pod addresses from one block of it per cluster.
type testPodNet struct {
	block int
	next  int
}

// enableTestPodNet makes PodCIDR local on the host (`ip route add local`,
// as the simulator's EnablePodNetwork does); root only, in a scratch "host"
// network namespace (inScratchNetns).
func enableTestPodNet(t *testing.T, ctx context.Context) {
	t.Helper()
	if err := hostIPBatch(ctx, []string{"route replace local " + PodCIDR + " dev lo"}); err != nil {
		t.Fatal(err)
	}
}

// podNetAddr is address n (0..511) of block b of PodCIDR.
func podNetAddr(b, n int) string {
	_, cidr, _ := net.ParseCIDR(PodCIDR)
	ip := make(net.IP, 4)
	binary.BigEndian.PutUint32(ip, binary.BigEndian.Uint32(cidr.IP.To4())+uint32(b*512+n))
	return ip.String()
}

// src is the host's source address towards pods (address 0 of the block).
func (p *testPodNet) src() string { return podNetAddr(p.block, 0) }

// allocPodIP returns the next pod address of the block.
func (p *testPodNet) allocPodIP() string {
	p.next++
	return podNetAddr(p.block, p.next)
}

package sim

import (
	"context"
	"fmt"

	resourcev1 "k8s.io/api/resource/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"aiconform.dev/testcluster/internal/podruntime"
)

// The simulator's side of the process runtime (internal/podruntime): the
// runtime runs the containers of mapped images of pods bound to simulated
// nodes and computes their statuses; the simulator hands it those pods, the
// nodes (podruntime.Node) and their devices (runtimeHost), and publishes
// the statuses.

// SetRuntime makes the simulator run containers of mapped images as
// processes (see podruntime.Runtime). Call before RunPods.
func (s *Simulator) SetRuntime(rt *podruntime.Runtime) {
	s.rt = rt
	rt.Attach(runtimeHost{s}, s.client, s.kubeletVersion)
}

// runtimeNode is the node as the runtime sees it.
func (n *node) runtimeNode() podruntime.Node {
	return podruntime.Node{Name: n.name, IP: n.ip, Pool: n.pool}
}

// runtimeHost is the simulator as the runtime's podruntime.Host: the
// devices its drivers advertise on each node.
type runtimeHost struct{ s *Simulator }

func (h runtimeHost) VGPUDevices(node string) map[int]string {
	return h.s.vgpuDevices(h.s.nodes[node])
}

func (h runtimeHost) ClaimDevices(claim *resourcev1.ResourceClaim, node string) map[string][]int {
	return h.s.claimDevices(claim, h.s.nodes[node])
}

func (h runtimeHost) TimeSlicing(node string) (replicas int, exclusive bool) {
	if !h.s.timeSliced(h.s.nodes[node]) {
		return 0, false
	}
	return h.s.sharing.Replicas, h.s.sharing.Exclusive
}

// WarmNodeRoots starts materializing the nodes' host trees in the
// background (see podruntime.Runtime.WarmNodeRoots) until ctx is done;
// nothing without a process runtime.
func (s *Simulator) WarmNodeRoots(ctx context.Context) {
	if s.rt == nil {
		return
	}
	nodes := make([]podruntime.Node, 0, len(s.order))
	for _, n := range s.order {
		nodes = append(nodes, n.runtimeNode())
	}
	s.rt.WarmNodeRoots(ctx, nodes)
}

// SetClusterDNS gives pods in network namespaces of their own an
// /etc/resolv.conf as a kubelet writes it for their dnsPolicy. Call before
// RunPods; without it (or for pods sharing the host's namespace) pods get
// none.
func (s *Simulator) SetClusterDNS(dns podruntime.ClusterDNS) {
	if s.rt != nil {
		s.rt.SetClusterDNS(dns)
	}
}

// SandboxAvailable reports whether the process runtime can run sandboxed
// pods (it needs mount and PID namespaces, so root), or why not.
func (s *Simulator) SandboxAvailable() error {
	if s.rt == nil {
		return fmt.Errorf("no process runtime (--run-image)")
	}
	return s.rt.SandboxAvailable()
}

// EnsureSandboxRuntimeClass creates the sandboxed RuntimeClass (one already
// there is left alone).
func (s *Simulator) EnsureSandboxRuntimeClass(ctx context.Context) error {
	_, err := s.client.NodeV1().RuntimeClasses().Create(ctx, podruntime.SandboxRuntimeClassObject(), metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

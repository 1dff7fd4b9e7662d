package sim

import (
	"fmt"
	"strconv"
	"strings"

	resourcev1 "k8s.io/api/resource/v1"
)

// The GPUs of the DRA driver DriverName: which of a node's GPUs a claim got.
// (The process runtime gives containers their device files and UUIDs.)

// gpuDeviceName is the DRA device name of GPU index i.
func gpuDeviceName(i int) string { return fmt.Sprintf("gpu-%d", i) }

// gpuIndex parses a DRA device name of this driver ("gpu-3" -> 3).
func gpuIndex(device string) (int, bool) {
	n, err := strconv.Atoi(strings.TrimPrefix(device, "gpu-"))
	if err != nil || !strings.HasPrefix(device, "gpu-") || n < 0 {
		return 0, false
	}
	return n, true
}

// claimGPUs returns, per request of a claim, the GPU indices allocated to it
// on node (devices of other drivers or pools are not this node's GPUs).
// Subrequest results ("req/sub") count for their request.
func claimGPUs(claim *resourcev1.ResourceClaim, node string) map[string][]int {
	out := map[string][]int{}
	if claim == nil || claim.Status.Allocation == nil {
		return out
	}
	for _, r := range claim.Status.Allocation.Devices.Results {
		if r.Driver != DriverName || r.Pool != node {
			continue
		}
		i, ok := gpuIndex(r.Device)
		if !ok {
			continue
		}
		req, _, _ := strings.Cut(r.Request, "/")
		out[req] = append(out[req], i)
	}
	return out
}

// claimDevices returns, per request of a claim, the device minors allocated
// to it on node n: its GPUs, then its vGPUs.
func (s *Simulator) claimDevices(claim *resourcev1.ResourceClaim, n *node) map[string][]int {
	out := claimGPUs(claim, n.name)
	for req, idx := range s.claimVGPUs(claim, n) {
		out[req] = append(out[req], idx...)
	}
	return out
}

package sim

import (
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"aiconform.dev/testcluster/internal/podruntime"
)

// GPU time-slicing as the NVIDIA device plugin configures it with
// renameByDefault: every GPU is advertised Replicas times as
// nvidia.com/gpu.shared, GPU feature discovery labels the node with the
// strategy and replica count, and up to Replicas containers get the same
// physical GPU.

// Sharing configures time-slicing on the GPU nodes.
type Sharing struct {
	// Replicas per GPU; below 2 nothing is shared or advertised.
	Replicas int
	// Exclusive advertises the replicas but gives each physical GPU to one
	// container at a time (fault).
	Exclusive bool
}

// SetGPUSharing enables time-slicing (call before RegisterNodes).
func (s *Simulator) SetGPUSharing(sh Sharing) { s.sharing = sh }

func (s *Simulator) timeSliced(n *node) bool { return n.pool.GPU != nil && s.sharing.Replicas > 1 }

// sharingLabels are GPU feature discovery's labels for the node's sharing.
func (s *Simulator) sharingLabels(n *node) map[string]string {
	if !s.timeSliced(n) {
		return nil
	}
	return map[string]string{
		"nvidia.com/gpu.sharing-strategy": "time-slicing",
		"nvidia.com/gpu.replicas":         strconv.Itoa(s.sharing.Replicas),
		"nvidia.com/gpu.count":            strconv.Itoa(n.pool.GPU.Count),
	}
}

// addSharedResources adds the replicas to a node's capacity or allocatable.
func (s *Simulator) addSharedResources(n *node, rl corev1.ResourceList) {
	if s.timeSliced(n) {
		rl[podruntime.SharedGPUResourceName] = *resource.NewQuantity(int64(n.pool.GPU.Count*s.sharing.Replicas), resource.DecimalSI)
	}
}

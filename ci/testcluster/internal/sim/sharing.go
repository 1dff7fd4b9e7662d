package sim

import (
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// GPU time-slicing as the NVIDIA device plugin configures it with
// renameByDefault: every GPU is advertised Replicas times as
// nvidia.com/gpu.shared, GPU feature discovery labels the node with the
// strategy and replica count, and up to Replicas containers get the same
// physical GPU.

// SharedGPUResourceName is the time-sliced replica resource.
const SharedGPUResourceName = corev1.ResourceName("nvidia.com/gpu.shared")

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
		rl[SharedGPUResourceName] = *resource.NewQuantity(int64(n.pool.GPU.Count*s.sharing.Replicas), resource.DecimalSI)
	}
}

// sharedGPUs is the nvidia.com/gpu.shared count a container asks for.
func sharedGPUs(c *corev1.Container) int {
	for _, rl := range []corev1.ResourceList{c.Resources.Limits, c.Resources.Requests} {
		if q, ok := rl[SharedGPUResourceName]; ok {
			return int(q.Value())
		}
	}
	return 0
}

// takeShared gives owner n replicas, each on a GPU with fewer than replicas
// sharers (lowest index first, so replicas fill a GPU before the next).
// With exclusive (the fault) a GPU with any sharer is full.
func (a *gpuAllocator) takeShared(owner string, n, replicas int, exclusive bool) ([]int, bool) {
	limit := replicas
	if exclusive {
		limit = 1
	}
	var got []int
	for i := 0; i < a.count && len(got) < n; i++ {
		for len(a.shared[i]) < limit && len(got) < n {
			a.shared[i] = append(a.shared[i], owner)
			got = append(got, i)
		}
	}
	if len(got) < n {
		a.releaseShared(owner)
		return nil, false
	}
	return got, true
}

func (a *gpuAllocator) releaseShared(owner string) {
	for i, owners := range a.shared {
		kept := owners[:0]
		for _, o := range owners {
			if o != owner {
				kept = append(kept, o)
			}
		}
		if len(kept) == 0 {
			delete(a.shared, i)
		} else {
			a.shared[i] = kept
		}
	}
}

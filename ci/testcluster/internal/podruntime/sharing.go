package podruntime

import (
	corev1 "k8s.io/api/core/v1"
)

// GPU time-slicing as the NVIDIA device plugin configures it with
// renameByDefault (the simulator advertises the replicas, see
// Host.TimeSlicing): up to replicas containers get the same physical GPU.

// SharedGPUResourceName is the time-sliced replica resource.
const SharedGPUResourceName = corev1.ResourceName("nvidia.com/gpu.shared")

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

package autoscaler

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"aiconform.dev/testcluster/internal/profile"
)

const (
	// PoolLabel names the node group a node belongs to; the pool's taint has
	// the same key, so only pods meant for the pool land there.
	PoolLabel = "node.aiconform.dev/pool"
	// PoolName is the autoscaled GPU pool.
	PoolName = "gpu-burst"
)

// BurstPool is the autoscaled pool: like the profile's GPU pool, labelled
// and tainted as its own node group, starting with no nodes.
func BurstPool(p *profile.Profile) (profile.Pool, bool) {
	i := p.GPUPool()
	if i < 0 {
		return profile.Pool{}, false
	}
	pl := p.Pools[i]
	pl.Name = PoolName
	pl.Count = 0
	pl.Labels = map[string]string{}
	for k, v := range p.Pools[i].Labels {
		pl.Labels[k] = v
	}
	pl.Labels[PoolLabel] = PoolName
	pl.Taints = append(append([]corev1.Taint(nil), p.Pools[i].Taints...),
		corev1.Taint{Key: PoolLabel, Value: PoolName, Effect: corev1.TaintEffectNoSchedule})
	return pl, true
}

// Template is the Node a new pool member will be, for fit checks.
func Template(pl profile.Pool) *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Labels: pl.Labels},
		Spec:       corev1.NodeSpec{Taints: pl.Taints},
		Status:     corev1.NodeStatus{Allocatable: pl.ResourceList()},
	}
}

// PoolOptions configure the autoscaled pool from the command line.
type PoolOptions struct {
	Min, Max       int
	ScaleDownAfter time.Duration
	NoScaleDown    bool
}

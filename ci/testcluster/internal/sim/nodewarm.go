package sim

import (
	"context"

	"k8s.io/klog/v2"
)

// warmNodeRoots materializes every node's host tree (its /proc, /sys and
// /etc as hostPath volumes show them) in the background, one node at a
// time, as a real node has its filesystem before its first pod: pods
// started later find it ready instead of writing it on their start path.
// Pods that arrive first build their node's tree themselves (it is built
// once either way).
func (rt *Runtime) warmNodeRoots(ctx context.Context, nodes []*node) {
	for _, n := range nodes {
		if ctx.Err() != nil {
			return
		}
		if _, err := rt.nodeRoot(n); err != nil {
			klog.InfoS("sim runtime: node root", "node", n.name, "err", err)
		}
	}
}

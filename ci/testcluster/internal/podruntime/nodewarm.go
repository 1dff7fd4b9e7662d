package podruntime

import (
	"context"

	"k8s.io/klog/v2"
)

// WarmNodeRoots starts materializing the nodes' host trees in the
// background (see warmNodeRoots) until ctx is done. The cluster calls it
// once it is ready: with thousands of nodes, writing their trees (tens of
// files and directories each) would otherwise take a large share of the
// start-up's CPU.
func (rt *Runtime) WarmNodeRoots(ctx context.Context, nodes []Node) {
	rt.wg.Add(1)
	go func() { defer rt.wg.Done(); rt.warmNodeRoots(ctx, nodes) }()
}

// warmNodeRoots materializes every node's host tree (its /proc, /sys and
// /etc as hostPath volumes show them) in the background, one node at a
// time, as a real node has its filesystem before its first pod: pods
// started later find it ready instead of writing it on their start path.
// Pods that arrive first build their node's tree themselves (it is built
// once either way).
func (rt *Runtime) warmNodeRoots(ctx context.Context, nodes []Node) {
	for _, n := range nodes {
		if ctx.Err() != nil {
			return
		}
		if _, err := rt.nodeRoot(n); err != nil {
			klog.InfoS("sim runtime: node root", "node", n.Name, "err", err)
		}
	}
}

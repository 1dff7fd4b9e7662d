package sim

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"aiconform.dev/testcluster/internal/profile"
)

// AddNodeSlots reserves up to max nodes built from pool that are not
// registered at start: an autoscaler brings them up with StartNode and takes
// them down with StopNode, as a cloud provider creates and deletes machines.
// Call it before RegisterNodes and RunPods (the node table is read-only
// once pods are simulated). It returns the slot names in order.
func (s *Simulator) AddNodeSlots(pool profile.Pool, max int) []string {
	pl := pool
	var names []string
	base := len(s.nodes)
	for i := 0; i < max; i++ {
		n := &node{name: pl.NodeName(i), pool: &pl, index: base + i, ip: nodeIP(base + i)}
		s.nodes[n.name] = n
		names = append(names, n.name)
	}
	return names
}

// StartNode registers a reserved node: Node object, Ready status, lease and,
// for GPU nodes, its ResourceSlices.
func (s *Simulator) StartNode(ctx context.Context, name string) error {
	n := s.nodes[name]
	if n == nil {
		return fmt.Errorf("no node slot %q", name)
	}
	if err := s.registerNode(ctx, n); err != nil {
		return err
	}
	return s.publishResourceSlices(ctx, n)
}

// StopNode deletes a node; its lease and ResourceSlice are owned by it and
// go with it.
func (s *Simulator) StopNode(ctx context.Context, name string) error {
	err := s.client.CoreV1().Nodes().Delete(ctx, name, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

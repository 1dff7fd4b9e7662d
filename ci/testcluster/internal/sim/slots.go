package sim

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

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
// for GPU nodes, its ResourceSlice.
func (s *Simulator) StartNode(ctx context.Context, name string) error {
	n := s.nodes[name]
	if n == nil {
		return fmt.Errorf("no node slot %q", name)
	}
	desired := s.desiredNode(n)
	_, err := s.client.CoreV1().Nodes().Create(ctx, desired, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	if err := s.updateStatus(ctx, n); err != nil {
		return err
	}
	// Admission adds the not-ready taint to new nodes; a ready node has only its own.
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := s.client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		cur.Spec.Taints = desired.Spec.Taints
		_, err = s.client.CoreV1().Nodes().Update(ctx, cur, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return err
	}
	if err := s.renewLease(ctx, n); err != nil {
		return err
	}
	if n.pool.GPU == nil {
		return nil
	}
	owner, err := s.client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	_, err = s.client.ResourceV1().ResourceSlices().Create(ctx, s.resourceSliceFor(n, owner), metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return nil
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

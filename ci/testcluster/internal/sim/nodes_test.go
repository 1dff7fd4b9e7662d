package sim

import (
	"context"
	"encoding/json"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"aiconform.dev/testcluster/internal/profile"
)

func TestDueBySpreadsEvenly(t *testing.T) {
	for _, c := range []struct{ ticks, n int }{{100, 3}, {100, 10000}, {3000, 1001}, {1, 5}} {
		prev := 0
		for tick := 0; tick < c.ticks; tick++ {
			due := dueBy(tick, c.ticks, c.n)
			if due < prev || due-prev > c.n/c.ticks+1 {
				t.Fatalf("ticks %d n %d: tick %d due %d after %d", c.ticks, c.n, tick, due, prev)
			}
			prev = due
		}
		if prev != c.n {
			t.Errorf("ticks %d n %d: %d due by the last tick", c.ticks, c.n, prev)
		}
	}
}

func TestRenewInterval(t *testing.T) {
	for nodes, want := range map[int]time.Duration{0: 10 * time.Second, 1000: 10 * time.Second, 1001: 10010 * time.Millisecond, 5000: 50 * time.Second, 10001: 100010 * time.Millisecond} {
		if got := renewInterval(nodes); got != want {
			t.Errorf("%d nodes: %v, want %v", nodes, got, want)
		}
	}
}

func TestForEach(t *testing.T) {
	var calls, running, peak atomic.Int64
	err := forEach(context.Background(), 100, 4, func(ctx context.Context, i int) error {
		calls.Add(1)
		r := running.Add(1)
		for p := peak.Load(); r > p && !peak.CompareAndSwap(p, r); p = peak.Load() {
		}
		time.Sleep(time.Millisecond)
		running.Add(-1)
		return nil
	})
	if err != nil || calls.Load() != 100 || peak.Load() > 4 {
		t.Fatalf("err %v calls %d peak %d", err, calls.Load(), peak.Load())
	}
	boom := errors.New("boom")
	calls.Store(0)
	err = forEach(context.Background(), 1000, 2, func(ctx context.Context, i int) error {
		calls.Add(1)
		if i == 3 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) || calls.Load() > 10 {
		t.Fatalf("err %v after %d calls", err, calls.Load())
	}
}

func TestRegisterNode(t *testing.T) {
	p, err := profile.Load("h100-sxm")
	if err != nil {
		t.Fatal(err)
	}
	client := fake.NewClientset()
	s := New(client, p, "v1.34.4", false)
	ctx := context.Background()
	if err := s.RegisterNodes(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.PublishResourceSlices(ctx); err != nil {
		t.Fatal(err)
	}
	nd, err := client.CoreV1().Nodes().Get(ctx, "gpu-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if q := nd.Status.Allocatable["nvidia.com/gpu"]; q.Value() != 8 || len(nd.Spec.Taints) != 1 || nd.Spec.Taints[0].Key != "nvidia.com/gpu" {
		t.Errorf("node gpu-1: allocatable %v taints %v", nd.Status.Allocatable, nd.Spec.Taints)
	}
	lease, err := client.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, "gpu-1", metav1.GetOptions{})
	if err != nil || *lease.Spec.LeaseDurationSeconds != 40 || lease.OwnerReferences[0].Name != "gpu-1" {
		t.Fatalf("lease %+v: %v", lease, err)
	}
	slices, err := client.ResourceV1().ResourceSlices().List(ctx, metav1.ListOptions{})
	if err != nil || len(slices.Items) != 2 {
		t.Fatalf("%d slices: %v", len(slices.Items), err)
	}
	// A node that exists already is adopted.
	if err := s.registerNode(ctx, s.nodes["gpu-1"]); err != nil {
		t.Fatal(err)
	}
	if err := s.renewLease(ctx, s.nodes["gpu-1"]); err != nil {
		t.Fatal(err)
	}
}

func TestHeartbeatPatch(t *testing.T) {
	s := testSim(t)
	b, err := s.heartbeatPatch(s.nodes["gpu-0"])
	if err != nil {
		t.Fatal(err)
	}
	var patch struct {
		Status struct {
			Conditions []corev1.NodeCondition `json:"conditions"`
		} `json:"status"`
	}
	if err := json.Unmarshal(b, &patch); err != nil {
		t.Fatal(err)
	}
	if len(patch.Status.Conditions) != 4 || patch.Status.Conditions[3].Type != corev1.NodeReady || patch.Status.Conditions[3].Status != corev1.ConditionTrue {
		t.Errorf("patch %s", b)
	}
}

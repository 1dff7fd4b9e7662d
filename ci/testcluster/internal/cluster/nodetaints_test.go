package cluster

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func node(taints []corev1.Taint, conds ...corev1.NodeCondition) *corev1.Node {
	return &corev1.Node{Spec: corev1.NodeSpec{Taints: taints}, Status: corev1.NodeStatus{Conditions: conds}}
}

func keys(ts []corev1.Taint) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.Key+":"+string(t.Effect))
	}
	return out
}

func TestSyncedTaintsFollowConditions(t *testing.T) {
	notReady := corev1.Taint{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoSchedule}
	gpu := corev1.Taint{Key: "nvidia.com/gpu", Effect: corev1.TaintEffectNoSchedule}
	ready := corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionTrue}
	noPressure := corev1.NodeCondition{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse}

	// A node made Ready after creation loses admission's not-ready taint, keeps its own.
	got, changed := syncedTaints(node([]corev1.Taint{notReady, gpu}, ready, noPressure))
	if !changed || len(got) != 1 || got[0].Key != "nvidia.com/gpu" {
		t.Fatalf("ready node: %v changed=%v", keys(got), changed)
	}
	// Already in step: nothing to do.
	if _, changed := syncedTaints(node([]corev1.Taint{gpu}, ready)); changed {
		t.Fatal("in-step node changed")
	}
	// Not ready: not-ready added once; unknown: unreachable instead.
	got, changed = syncedTaints(node([]corev1.Taint{gpu}, corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionFalse}))
	if !changed || len(got) != 2 || got[1].Key != corev1.TaintNodeNotReady || got[1].TimeAdded == nil {
		t.Fatalf("not-ready node: %v changed=%v", keys(got), changed)
	}
	got, _ = syncedTaints(node([]corev1.Taint{notReady}, corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionUnknown}))
	if len(got) != 1 || got[0].Key != corev1.TaintNodeUnreachable {
		t.Fatalf("unknown node: %v", keys(got))
	}
	// The NoExecute variant is eviction's, not this pass's: left alone.
	noExec := corev1.Taint{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoExecute}
	if got, changed := syncedTaints(node([]corev1.Taint{noExec}, ready)); changed || len(got) != 1 {
		t.Fatalf("NoExecute taint touched: %v", keys(got))
	}
	// No conditions reported yet: untouched.
	if _, changed := syncedTaints(node([]corev1.Taint{notReady})); changed {
		t.Fatal("node without conditions changed")
	}
}

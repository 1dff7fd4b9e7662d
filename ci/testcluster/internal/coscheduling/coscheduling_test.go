package coscheduling

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func pod(node string, phase corev1.PodPhase) *corev1.Pod {
	return &corev1.Pod{Spec: corev1.PodSpec{NodeName: node}, Status: corev1.PodStatus{Phase: phase}}
}

func TestComputeStatus(t *testing.T) {
	cases := []struct {
		pods []*corev1.Pod
		want string
	}{
		{nil, PhasePending},
		{[]*corev1.Pod{pod("", corev1.PodPending), pod("", corev1.PodPending)}, PhasePending},
		{[]*corev1.Pod{pod("n", corev1.PodPending), pod("", corev1.PodPending)}, PhaseScheduling},
		{[]*corev1.Pod{pod("n", corev1.PodPending), pod("m", corev1.PodPending)}, PhaseScheduled},
		{[]*corev1.Pod{pod("n", corev1.PodRunning), pod("m", corev1.PodRunning)}, PhaseRunning},
		{[]*corev1.Pod{pod("n", corev1.PodSucceeded), pod("m", corev1.PodSucceeded)}, PhaseFinished},
		{[]*corev1.Pod{pod("n", corev1.PodFailed), pod("m", corev1.PodRunning)}, PhaseFailed},
	}
	for i, c := range cases {
		if got := ComputeStatus(2, c.pods); got.Phase != c.want {
			t.Errorf("case %d: phase %s, want %s (%+v)", i, got.Phase, c.want, got)
		}
	}
}

func TestCRD(t *testing.T) {
	crd := PodGroupCRD()
	if crd.Name != PodGroupGVR.Resource+"."+PodGroupGVR.Group || crd.Spec.Versions[0].Name != PodGroupGVR.Version || crd.Spec.Names.Kind != "PodGroup" {
		t.Errorf("unexpected CRD %s %+v", crd.Name, crd.Spec.Names)
	}
	if _, ok := crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"].Properties["minMember"]; !ok {
		t.Errorf("minMember missing from schema")
	}
}

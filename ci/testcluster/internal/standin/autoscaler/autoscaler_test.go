package autoscaler

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var taint = corev1.Taint{Key: "pool", Value: "burst", Effect: corev1.TaintEffectNoSchedule}

func template() *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"pool": "burst"}},
		Spec:       corev1.NodeSpec{Taints: []corev1.Taint{taint}},
		Status: corev1.NodeStatus{Allocatable: corev1.ResourceList{
			GPU: resource.MustParse("8"), corev1.ResourceCPU: resource.MustParse("16")}},
	}
}

func gpuPod(name string, gpus string, node string, tolerate bool) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{
			Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{GPU: resource.MustParse(gpus)}}}}},
	}
	if tolerate {
		p.Spec.Tolerations = []corev1.Toleration{{Key: "pool", Operator: corev1.TolerationOpExists}}
	}
	if node == "" {
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable}}
	} else {
		p.Status.Phase = corev1.PodRunning
	}
	return p
}

func node(name string) *corev1.Node { return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}} }

func TestFits(t *testing.T) {
	if !Fits(gpuPod("a", "1", "", true), template()) {
		t.Error("tolerating 1-GPU pod must fit")
	}
	if Fits(gpuPod("a", "1", "", false), template()) {
		t.Error("pod not tolerating the pool taint must not fit")
	}
	if Fits(gpuPod("a", "9", "", true), template()) {
		t.Error("9 GPUs do not fit an 8-GPU node")
	}
	cpu := gpuPod("a", "1", "", true)
	cpu.Spec.Containers[0].Resources.Limits = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}
	if Fits(cpu, template()) {
		t.Error("a pod without GPUs does not trigger the GPU pool")
	}
	sel := gpuPod("a", "1", "", true)
	sel.Spec.NodeSelector = map[string]string{"pool": "other"}
	if Fits(sel, template()) {
		t.Error("nodeSelector of another pool must not fit")
	}
}

func TestStepGrowsThenShrinksAfterCooldown(t *testing.T) {
	a := &scaler{o: Options{Slots: []string{"b-0", "b-1"}, Min: 1, Template: template(), ScaleDownAfter: 10 * time.Second}, idleSince: map[string]time.Time{}}
	t0 := time.Unix(1000, 0)
	up, down := a.step(t0, []*corev1.Pod{gpuPod("p", "1", "b-0", true), gpuPod("q", "1", "", true)}, []*corev1.Node{node("b-0")})
	if up != "b-1" || len(down) != 0 {
		t.Fatalf("scale up: %q %v", up, down)
	}
	// The pod runs on the new node, then goes away: b-1 idles.
	up, down = a.step(t0.Add(8*time.Second), nil, []*corev1.Node{node("b-0"), node("b-1")})
	if up != "" || len(down) != 0 {
		t.Fatalf("idle starts: %q %v", up, down)
	}
	up, down = a.step(t0.Add(17*time.Second), nil, []*corev1.Node{node("b-0"), node("b-1")})
	if len(down) != 0 {
		t.Fatalf("before cooldown: %v", down)
	}
	_, down = a.step(t0.Add(18*time.Second), nil, []*corev1.Node{node("b-0"), node("b-1")})
	if len(down) != 1 || down[0] != "b-1" {
		t.Fatalf("after cooldown, only above min: %v", down)
	}
}

func TestNoScaleDownFault(t *testing.T) {
	a := &scaler{o: Options{Slots: []string{"b-0", "b-1"}, Min: 0, Template: template(), NoScaleDown: true}, idleSince: map[string]time.Time{}}
	t0 := time.Unix(1000, 0)
	a.step(t0, nil, []*corev1.Node{node("b-0")})
	if _, down := a.step(t0.Add(time.Hour), nil, []*corev1.Node{node("b-0")}); len(down) != 0 {
		t.Fatalf("fault must never scale down: %v", down)
	}
}

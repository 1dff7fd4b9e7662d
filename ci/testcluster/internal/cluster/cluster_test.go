package cluster

import (
	"strings"
	"testing"
)

func TestSchedulerConfig(t *testing.T) {
	on := schedulerConfig("/x/kubeconfig", true)
	off := schedulerConfig("/x/kubeconfig", false)
	if !strings.Contains(on, "name: Coscheduling") || strings.Contains(off, "Coscheduling") {
		t.Errorf("gang plugin toggling broken:\n%s\n---\n%s", on, off)
	}
	if !strings.Contains(on, `kubeconfig: "/x/kubeconfig"`) || !strings.Contains(on, "leaderElect: false") {
		t.Errorf("config:\n%s", on)
	}
}

func TestControllers(t *testing.T) {
	want := []string{"job-controller", "replicaset-controller", "deployment-controller", "daemonset-controller",
		"statefulset-controller", "namespace-controller", "garbage-collector-controller", "serviceaccount-controller",
		"serviceaccount-token-controller", "resourceclaim-controller"}
	have := map[string]bool{}
	for _, c := range controllers {
		have[c] = true
	}
	for _, w := range want {
		if !have[w] {
			t.Errorf("controller %s not enabled", w)
		}
	}
	for _, c := range []string{"node-lifecycle-controller", "node-ipam-controller"} {
		if have[c] {
			t.Errorf("%s must stay disabled", c)
		}
	}
}

func TestHPAControllerToggle(t *testing.T) {
	has := func(list []string) bool {
		for _, c := range list {
			if c == hpaController {
				return true
			}
		}
		return false
	}
	if !has(controllerList(false)) || has(controllerList(true)) {
		t.Errorf("HPA controller toggling broken: %v / %v", controllerList(false), controllerList(true))
	}
	if has(controllers) {
		t.Error("controllerList must not change the base list")
	}
}

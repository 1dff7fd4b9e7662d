package podruntime

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestPodHostsFile(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "prometheus-k8s-0", Namespace: "default"},
		Spec: corev1.PodSpec{Hostname: "prometheus-k8s-0", Subdomain: "prometheus-operated",
			HostAliases: []corev1.HostAlias{{IP: "10.0.0.1", Hostnames: []string{"a", "b"}}}}}
	got := string(podHostsFile(pod, "198.18.0.5"))
	for _, want := range []string{
		"127.0.0.1\tlocalhost\n",
		"::1\tlocalhost ip6-localhost ip6-loopback\n",
		"198.18.0.5\tprometheus-k8s-0.prometheus-operated.default.svc.cluster.local\tprometheus-k8s-0\n",
		"10.0.0.1\ta\tb\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("hosts file lacks %q:\n%s", want, got)
		}
	}
	plain := string(podHostsFile(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}}, "198.18.0.6"))
	if !strings.HasSuffix(plain, "198.18.0.6\tp\n") || strings.Contains(plain, "HostAliases") {
		t.Errorf("plain pod:\n%s", plain)
	}
}

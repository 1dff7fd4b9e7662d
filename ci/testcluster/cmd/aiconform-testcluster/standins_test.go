package main

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestStandInsThroughServiceProxyE2E: the DCGM exporter and Prometheus
// stand-ins are reached the way a real cluster's are, through the API
// server's service proxy, and the exporter's numbers follow a GPU pod.
func TestStandInsThroughServiceProxyE2E(t *testing.T) {
	if testing.Short() || os.Getenv("AICONFORM_TESTCLUSTER_E2E") != "1" {
		t.Skip("set AICONFORM_TESTCLUSTER_E2E=1 to run the end-to-end cluster test")
	}
	tc := startCluster(t, "--nodes", "1", "--real-node", "off")
	ctx := context.Background()
	scrape := func() string {
		var body []byte
		waitFor(t, "the exporter through the service proxy", 60*time.Second, func(ctx context.Context) (bool, error) {
			b, err := tc.client.CoreV1().Services("gpu-operator").ProxyGet("", "nvidia-dcgm-exporter", "gpu-metrics", "metrics", nil).DoRaw(ctx)
			body = b
			return err == nil, nil
		})
		return string(body)
	}
	idle := scrape()
	if !strings.Contains(idle, `DCGM_FI_DEV_GPU_UTIL{gpu="7",`) || !strings.Contains(idle, `Hostname="gpu-0"} 0`) {
		t.Fatalf("exporter answer:\n%s", idle)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "load", Namespace: "default"},
		Spec: corev1.PodSpec{Tolerations: gpuToleration(), Containers: []corev1.Container{{Name: "c", Image: "busybox",
			Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{"nvidia.com/gpu": resource.MustParse("1")}}}}},
	}
	if _, err := tc.client.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the GPU pod", 30*time.Second, podRunning(tc, "default", "load"))
	if busy := scrape(); !strings.Contains(busy, `Hostname="gpu-0",container="c",namespace="default",pod="load"} 97`) {
		t.Fatalf("exporter under load:\n%s", busy)
	}
	var answer []byte
	waitFor(t, "the Prometheus query API through the service proxy", 60*time.Second, func(ctx context.Context) (bool, error) {
		b, err := tc.client.CoreV1().Services("monitoring").ProxyGet("", "prometheus-testcluster", "web", "api/v1/query", map[string]string{"query": "up"}).DoRaw(ctx)
		answer = b
		return err == nil, nil
	})
	if !strings.Contains(string(answer), `"status":"success"`) {
		t.Fatalf("query answer: %s", answer)
	}
}

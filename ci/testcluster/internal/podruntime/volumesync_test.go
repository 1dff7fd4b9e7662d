package podruntime

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
)

// mutableEnv is an envSource the test changes while pods run; a missing
// object is NotFound like from the API server.
type mutableEnv struct {
	mu   sync.Mutex
	data map[string]map[string]string // "cm/ns/name" or "secret/ns/name"
	gets map[string]int
}

func newMutableEnv() *mutableEnv {
	return &mutableEnv{data: map[string]map[string]string{}, gets: map[string]int{}}
}

func (e *mutableEnv) set(key string, d map[string]string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.data[key] = d
}

func (e *mutableEnv) count(key string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.gets[key]
}

func (e *mutableEnv) get(key, resource, name string) (map[string]string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.gets[key]++
	if d, ok := e.data[key]; ok {
		return d, nil
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: resource}, name)
}

func (e *mutableEnv) configMap(_ context.Context, ns, name string) (map[string]string, error) {
	return e.get("cm/"+ns+"/"+name, "configmaps", name)
}

func (e *mutableEnv) secret(_ context.Context, ns, name string) (map[string]string, error) {
	return e.get("secret/"+ns+"/"+name, "secrets", name)
}

// fastVolumeSync shortens the refresh period for the test.
func fastVolumeSync(t *testing.T) {
	old := volumeSyncPeriod
	volumeSyncPeriod = 20 * time.Millisecond
	t.Cleanup(func() { volumeSyncPeriod = old })
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func readString(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return "<" + err.Error() + ">"
	}
	return string(b)
}

// timestampDirs lists the atomic writer's content dirs of a volume.
func timestampDirs(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), "..") {
			out = append(out, e.Name())
		}
	}
	return out
}

// TestVolumeAtomicWriter: files live in a timestamped dir behind ..data,
// top-level names are symlinks into it, and a rewrite swaps ..data, drops
// links of vanished names and removes the previous dir.
func TestVolumeAtomicWriter(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "vol")
	if err := writeFiles(dir, map[string][]byte{"a": []byte("1"), "sub/b": []byte("2")}); err != nil {
		t.Fatal(err)
	}
	first, err := os.Readlink(filepath.Join(dir, dataLink))
	if err != nil || !strings.HasPrefix(first, "..") {
		t.Fatalf("..data -> %q %v", first, err)
	}
	if l, _ := os.Readlink(filepath.Join(dir, "a")); l != "..data/a" {
		t.Errorf("a -> %q", l)
	}
	if l, _ := os.Readlink(filepath.Join(dir, "sub")); l != "..data/sub" {
		t.Errorf("sub -> %q", l)
	}
	if got := readString(filepath.Join(dir, "sub/b")); got != "2" {
		t.Errorf("sub/b = %q", got)
	}
	if st, err := os.Stat(filepath.Join(dir, first)); err != nil || st.Mode().Perm() != 0o755 {
		t.Errorf("timestamped dir mode %v %v", st.Mode(), err)
	}
	if err := writeFiles(dir, map[string][]byte{"a": []byte("new"), "c": []byte("3")}); err != nil {
		t.Fatal(err)
	}
	second, _ := os.Readlink(filepath.Join(dir, dataLink))
	if second == first || readString(filepath.Join(dir, "a")) != "new" || readString(filepath.Join(dir, "c")) != "3" {
		t.Errorf("..data -> %q (was %q), a = %q", second, first, readString(filepath.Join(dir, "a")))
	}
	if _, err := os.Lstat(filepath.Join(dir, "sub")); !os.IsNotExist(err) {
		t.Errorf("link of a vanished name stays: %v", err)
	}
	if ts := timestampDirs(t, dir); len(ts) != 1 || ts[0] != second {
		t.Errorf("timestamped dirs %v", ts)
	}
	if got, err := readPayload(dir); err != nil || len(got) != 2 || string(got["a"]) != "new" {
		t.Errorf("readPayload %v %v", got, err)
	}
	if err := writeFiles(dir, map[string][]byte{"..x": nil}); err == nil {
		t.Error("a path starting with .. was written")
	}
}

// volumeTestPod has a ConfigMap, a Secret (one item), a projected volume
// (ConfigMap, Secret and downward API sources) and an optional ConfigMap
// that does not exist yet.
func volumeTestPod() *corev1.Pod {
	cm := func(name string) corev1.LocalObjectReference { return corev1.LocalObjectReference{Name: name} }
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "prom", Namespace: "mon", UID: "uid-vol"},
		Spec: corev1.PodSpec{
			NodeName: "gpu-0",
			Volumes: []corev1.Volume{
				{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: cm("cfg")}}},
				{Name: "sec", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "prometheus-k8s",
					Items: []corev1.KeyToPath{{Key: "prometheus.yaml.gz", Path: "config/prometheus.yaml.gz"}}}}},
				{Name: "proj", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
					{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: cm("cfg"), Items: []corev1.KeyToPath{{Key: "level", Path: "level"}}}},
					{Secret: &corev1.SecretProjection{LocalObjectReference: cm("prometheus-k8s")}},
					{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{Path: "name",
						FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}}},
				}}}},
				{Name: "opt", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: cm("later"),
					Optional: ptr.To(true), Items: []corev1.KeyToPath{{Key: "k", Path: "k"}, {Key: "absent", Path: "absent"}}}}},
			},
		},
	}
}

// TestVolumeRefresh: ConfigMap, Secret and projected volumes written at pod
// start follow later changes of their sources; downward API files stay; an
// optional ConfigMap missing at start gives an empty volume that fills in
// once it exists (an absent key of it is skipped).
func TestVolumeRefresh(t *testing.T) {
	fastVolumeSync(t)
	s := testSim(t)
	rt, err := NewRuntime(RuntimeOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	s.SetRuntime(rt)
	env := newMutableEnv()
	rt.env = env
	env.set("cm/mon/cfg", map[string]string{"level": "info", "other": "x"})
	env.set("secret/mon/prometheus-k8s", map[string]string{"prometheus.yaml.gz": "v1"})
	pod := volumeTestPod()
	pr := &podRun{key: "mon/prom", dir: filepath.Join(rt.opts.Dir, "pods", "uid-vol")}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := rt.preparePod(ctx, pod, s.nodes["gpu-0"], pr); err != nil {
		t.Fatal(err)
	}
	vol := func(p string) string { return filepath.Join(pr.dir, "volumes", p) }
	if got := readString(vol("sec/config/prometheus.yaml.gz")); got != "v1" {
		t.Fatalf("secret at start: %q", got)
	}
	if got, err := readPayload(vol("opt")); err != nil || len(got) != 0 {
		t.Fatalf("missing optional ConfigMap: %v %v", got, err)
	}
	stop := rt.startVolumeSync(ctx, pod, pr)
	defer stop()
	oldSecData, _ := os.Readlink(vol("sec/..data"))

	env.set("cm/mon/cfg", map[string]string{"level": "debug"})
	env.set("secret/mon/prometheus-k8s", map[string]string{"prometheus.yaml.gz": "v2"})
	eventually(t, "ConfigMap volume update", func() bool {
		return readString(vol("cfg/level")) == "debug" && readString(vol("cfg/..data/level")) == "debug"
	})
	if _, err := os.Lstat(vol("cfg/other")); !os.IsNotExist(err) {
		t.Errorf("removed key still present: %v", err)
	}
	eventually(t, "Secret volume update", func() bool {
		return readString(vol("sec/config/prometheus.yaml.gz")) == "v2" && readString(vol("sec/..data/config/prometheus.yaml.gz")) == "v2"
	})
	// The writer swaps ..data first, then removes the previous content dir.
	eventually(t, "previous content dir "+oldSecData+" removed", func() bool {
		_, err := os.Stat(vol("sec/" + oldSecData))
		return os.IsNotExist(err)
	})
	eventually(t, "projected volume update", func() bool {
		return readString(vol("proj/level")) == "debug" && readString(vol("proj/prometheus.yaml.gz")) == "v2"
	})
	if got := readString(vol("proj/name")); got != "prom" {
		t.Errorf("downward API file after refresh: %q", got)
	}
	env.set("cm/mon/later", map[string]string{"k": "v"})
	eventually(t, "optional ConfigMap appearing", func() bool { return readString(vol("opt/k")) == "v" })
	if _, err := os.Lstat(vol("opt/absent")); !os.IsNotExist(err) {
		t.Errorf("absent optional key: %v", err)
	}
	stop()
	for _, v := range []string{"cfg", "sec", "proj", "opt"} {
		if ts := timestampDirs(t, vol(v)); len(ts) != 1 {
			t.Errorf("volume %s: timestamped dirs %v", v, ts)
		}
	}
}

// TestVolumeWaitsForSecret runs a real container (needs root): it stays
// ContainerCreating while its Secret is missing, starts once it exists, and
// sees changes of its ConfigMap and Secret through its mounts.
func TestVolumeWaitsForSecret(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for mount and PID namespaces")
	}
	sleep, err := filepath.EvalSymlinks("/bin/sleep")
	if err != nil {
		t.Skip("no /bin/sleep")
	}
	fastVolumeSync(t)
	s := testSim(t)
	rt, err := NewRuntime(RuntimeOptions{Images: map[string]string{"example.com/sleep": sleep}, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	s.SetRuntime(rt)
	env := newMutableEnv()
	rt.env = env
	rt.notify = func(string) {}
	env.set("cm/mon/cfg", map[string]string{"level": "info"})
	pod := volumeTestPod()
	pod.Spec.RestartPolicy = corev1.RestartPolicyNever
	pod.Spec.Containers = []corev1.Container{{Name: "c", Image: "example.com/sleep:1", Command: []string{filepath.Base(sleep), "300"},
		VolumeMounts: []corev1.VolumeMount{{Name: "cfg", MountPath: "/etc/cfg", ReadOnly: true}, {Name: "sec", MountPath: "/etc/sec", ReadOnly: true}}}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	defer rt.Shutdown()
	pr := rt.ensure(ctx, pod, s.nodes["gpu-0"], "127.16.0.9")
	eventually(t, "retries for the missing Secret", func() bool { return env.count("secret/mon/prometheus-k8s") >= 3 })
	st := pr.status(pod, &corev1.PodStatus{}, time.Now())
	if w := st.ContainerStatuses[0].State.Waiting; st.Phase != corev1.PodPending || w == nil || w.Reason != "ContainerCreating" {
		t.Fatalf("while the Secret is missing: phase %s state %+v", st.Phase, st.ContainerStatuses[0].State)
	}
	env.set("secret/mon/prometheus-k8s", map[string]string{"prometheus.yaml.gz": "v1"})
	var pid int
	eventually(t, "the container running", func() bool {
		pr.mu.Lock()
		defer pr.mu.Unlock()
		if p := pr.procs["c"]; p != nil {
			pid = p.Pid
		}
		return pid != 0
	})
	// The container's own view, through its mount namespace and root.
	view := func(p string) string { return readString(filepath.Join("/proc", strconv.Itoa(pid), "root", p)) }
	eventually(t, "the mounted Secret", func() bool { return view("/etc/sec/config/prometheus.yaml.gz") == "v1" })
	env.set("cm/mon/cfg", map[string]string{"level": "debug"})
	env.set("secret/mon/prometheus-k8s", map[string]string{"prometheus.yaml.gz": "v2"})
	eventually(t, "updates in the container", func() bool {
		return view("/etc/cfg/level") == "debug" && view("/etc/sec/config/prometheus.yaml.gz") == "v2"
	})
	rt.Stop("mon/prom", 0)
	select {
	case <-pr.done:
	case <-time.After(10 * time.Second):
		t.Fatal("pod did not stop")
	}
}

// TestVolumeWaitEndsWithPod: a pod waiting for a Secret stops waiting when
// it is deleted, without waiting for its grace period.
func TestVolumeWaitEndsWithPod(t *testing.T) {
	fastVolumeSync(t)
	s := testSim(t)
	rt, err := NewRuntime(RuntimeOptions{Images: map[string]string{"example.com/sleep": "/bin/sh"}, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	s.SetRuntime(rt)
	env := newMutableEnv()
	rt.env = env
	rt.notify = func(string) {}
	pod := volumeTestPod()
	pod.Spec.Containers = []corev1.Container{{Name: "c", Image: "example.com/sleep:1"}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr := rt.ensure(ctx, pod, s.nodes["gpu-0"], "127.16.0.9")
	eventually(t, "a look for the missing ConfigMap", func() bool { return env.count("cm/mon/cfg") >= 1 })
	rt.Stop("mon/prom", time.Hour)
	select {
	case <-pr.done:
	case <-time.After(10 * time.Second):
		t.Fatal("waiting pod did not end after deletion")
	}
	rt.Shutdown()
}

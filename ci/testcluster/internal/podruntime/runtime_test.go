package podruntime

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestImageRepository(t *testing.T) {
	for in, want := range map[string]string{
		"ghcr.io/aiconform/aiconform:v0.1.0":            "ghcr.io/aiconform/aiconform",
		"ghcr.io/aiconform/aiconform":                   "ghcr.io/aiconform/aiconform",
		"localhost:5000/a/b:1@sha256:abc":               "localhost:5000/a/b",
		"localhost:5000/a/b":                            "localhost:5000/a/b",
		"ghcr.io/aiconform/aiconform@sha256:0123456789": "ghcr.io/aiconform/aiconform",
	} {
		if got := imageRepository(in); got != want {
			t.Errorf("imageRepository(%q) = %q, want %q", in, got, want)
		}
	}
	if repo, bin, user, err := ParseRunImage("ghcr.io/aiconform/aiconform=/x/aiconform"); err != nil || repo != "ghcr.io/aiconform/aiconform" || bin != "/x/aiconform" || user != (ImageUser{}) {
		t.Errorf("ParseRunImage: %q %q %v %v", repo, bin, user, err)
	}
	if _, _, user, err := ParseRunImage("registry.k8s.io/kueue/kueue=/x/manager,user=65532"); err != nil || user != (ImageUser{UID: 65532, GID: 65532}) {
		t.Errorf("ParseRunImage with user: %v %v", user, err)
	}
	for _, bad := range []string{"noequals", "=/bin/x", "repo=", "repo:v1=/bin/x"} {
		if _, _, _, err := ParseRunImage(bad); err == nil {
			t.Errorf("ParseRunImage(%q) accepted", bad)
		}
	}
}

func TestExpandVars(t *testing.T) {
	vars := map[string]string{"A": "1", "NODE": "gpu-0"}
	for in, want := range map[string]string{
		"plain":           "plain",
		"$(A)":            "1",
		"x-$(NODE)-$(A)":  "x-gpu-0-1",
		"$(MISSING)":      "$(MISSING)",
		"$$(A)":           "$(A)",
		"cost $5":         "cost $5",
		"open $(A":        "open $(A",
		"cm://ns/$(NODE)": "cm://ns/gpu-0",
	} {
		if got := expandVars(in, vars); got != want {
			t.Errorf("expandVars(%q) = %q, want %q", in, got, want)
		}
	}
}

type fakeEnvSource map[string]map[string]string

func (f fakeEnvSource) configMap(_ context.Context, ns, name string) (map[string]string, error) {
	if d, ok := f["cm/"+ns+"/"+name]; ok {
		return d, nil
	}
	return nil, fmt.Errorf("configmaps %q not found", name)
}

func (f fakeEnvSource) secret(_ context.Context, ns, name string) (map[string]string, error) {
	if d, ok := f["secret/"+ns+"/"+name]; ok {
		return d, nil
	}
	return nil, fmt.Errorf("secrets %q not found", name)
}

func TestContainerEnv(t *testing.T) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "agent-3", Namespace: "snap", UID: "u-1", Labels: map[string]string{"app": "agent"}},
		Spec:       corev1.PodSpec{NodeName: "gpu-7", ServiceAccountName: "sa"},
	}
	c := &corev1.Container{
		Name: "agent",
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m")},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("128Mi")},
		},
		EnvFrom: []corev1.EnvFromSource{{Prefix: "CFG_", ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}}},
		Env: []corev1.EnvVar{
			{Name: "LIT", Value: "x"},
			{Name: "POD", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
			{Name: "NS", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
			{Name: "NODE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}},
			{Name: "PODIP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
			{Name: "HOSTIP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.hostIP"}}},
			{Name: "APP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels['app']"}}},
			{Name: "CPU_REQ", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "requests.cpu", Divisor: resource.MustParse("1m")}}},
			{Name: "MEM_LIMIT", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.memory", Divisor: resource.MustParse("1Mi")}}},
			{Name: "CPU_LIMIT", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.cpu"}}},
			{Name: "KEY", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}, Key: "level"}}},
			{Name: "OPT", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "nope"}, Key: "k", Optional: ptr.To(true)}}},
			{Name: "OUT", Value: "cm://$(NS)/$(POD)-$(UNDEFINED)"},
		},
	}
	src := fakeEnvSource{"cm/snap/cfg": {"level": "debug"}}
	alloc := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("192")}
	list, vars, err := containerEnv(context.Background(), c, podFields{pod: pod, podIP: "127.16.0.2", hostIP: "127.1.0.8"}, alloc, src, map[string]string{"PATH": "/bin"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"PATH": "/bin", "LIT": "x", "POD": "agent-3", "NS": "snap", "NODE": "gpu-7", "PODIP": "127.16.0.2",
		"HOSTIP": "127.1.0.8", "APP": "agent", "CPU_REQ": "250", "MEM_LIMIT": "128", "CPU_LIMIT": "192",
		"KEY": "debug", "OPT": "", "CFG_level": "debug", "OUT": "cm://snap/agent-3-$(UNDEFINED)",
	}
	for k, v := range want {
		if vars[k] != v {
			t.Errorf("%s = %q, want %q", k, vars[k], v)
		}
	}
	if len(list) != len(want) || list[0] != "APP=agent" {
		t.Errorf("sorted list %v", list)
	}
	c.Env = append(c.Env, corev1.EnvVar{Name: "BAD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "nope"}, Key: "k"}}})
	if _, _, err := containerEnv(context.Background(), c, podFields{pod: pod}, alloc, src, nil); err == nil || !strings.Contains(err.Error(), "env BAD") {
		t.Errorf("missing secret: %v", err)
	}
}

func TestContainerArgv(t *testing.T) {
	vars := map[string]string{"NODE": "gpu-0"}
	bin := "/work/target/debug/aiconform"
	cases := []struct {
		cmd, args []string
		want      string
		err       bool
	}{
		{nil, nil, "aiconform", false},
		{nil, []string{"--version"}, "aiconform --version", false},
		{[]string{"aiconform", "agent", "--node", "$(NODE)"}, []string{"-v"}, "aiconform agent --node gpu-0 -v", false},
		{[]string{"/usr/local/bin/aiconform", "x"}, nil, "/usr/local/bin/aiconform x", false},
		{[]string{"sh", "-c", "true"}, nil, "", true},
	}
	for _, tc := range cases {
		argv, err := containerArgv(&corev1.Container{Command: tc.cmd, Args: tc.args}, bin, vars)
		if (err != nil) != tc.err || strings.Join(argv, " ") != tc.want {
			t.Errorf("%v %v: %q %v", tc.cmd, tc.args, argv, err)
		}
	}
}

func TestTerminationMessage(t *testing.T) {
	fallback := corev1.TerminationMessageFallbackToLogsOnError
	if got := terminationMessage([]byte("done"), []byte("log"), 1, fallback); got != "done" {
		t.Errorf("file wins: %q", got)
	}
	if got := terminationMessage(nil, []byte("a\nb\n"), 2, fallback); got != "a\nb" {
		t.Errorf("fallback to log: %q", got)
	}
	if got := terminationMessage(nil, []byte("log"), 0, fallback); got != "" {
		t.Errorf("no fallback on success: %q", got)
	}
	if got := terminationMessage(nil, []byte("log"), 1, corev1.TerminationMessageReadFile); got != "" {
		t.Errorf("File policy ignores logs: %q", got)
	}
	if got := terminationMessage([]byte(strings.Repeat("x", 5000)), nil, 0, ""); len(got) != 4096 {
		t.Errorf("file capped at 4096: %d", len(got))
	}
	var lines []string
	for i := 0; i < 200; i++ {
		lines = append(lines, fmt.Sprintf("line %d", i))
	}
	got := terminationMessage(nil, []byte(strings.Join(lines, "\n")), 1, fallback)
	if !strings.HasPrefix(got, "line 120\n") || !strings.HasSuffix(got, "line 199") {
		t.Errorf("last 80 lines: %q...", got[:20])
	}
}

func TestExitCodeMapping(t *testing.T) {
	pod := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "a"}, {Name: "b"}}}}
	now := metav1.Now()
	for _, tc := range []struct {
		a, b  int32
		phase corev1.PodPhase
	}{{0, 0, corev1.PodSucceeded}, {0, 3, corev1.PodFailed}, {137, 0, corev1.PodFailed}} {
		pr := &podRun{ctrs: map[string]*ctrState{
			"a": {name: "a", done: &corev1.ContainerStateTerminated{ExitCode: tc.a, Reason: terminatedReason(tc.a), FinishedAt: now}},
			"b": {name: "b", done: &corev1.ContainerStateTerminated{ExitCode: tc.b, Reason: terminatedReason(tc.b), FinishedAt: now}},
		}}
		st := pr.status(pod, &corev1.PodStatus{}, time.Now())
		if st.Phase != tc.phase {
			t.Errorf("%d,%d: phase %s, want %s", tc.a, tc.b, st.Phase, tc.phase)
		}
		if r := st.ContainerStatuses[1].State.Terminated.Reason; r != terminatedReason(tc.b) {
			t.Errorf("reason %s", r)
		}
	}
	if terminatedReason(0) != "Completed" || terminatedReason(1) != "Error" {
		t.Error("reasons")
	}
	// One container still running: the pod runs.
	pr := &podRun{ctrs: map[string]*ctrState{
		"a": {name: "a", done: &corev1.ContainerStateTerminated{ExitCode: 0}},
		"b": {name: "b", running: &corev1.ContainerStateRunning{StartedAt: now}},
	}}
	if st := pr.status(pod, &corev1.PodStatus{}, time.Now()); st.Phase != corev1.PodRunning {
		t.Errorf("phase %s", st.Phase)
	}
}

func TestNodeTree(t *testing.T) {
	s := testSim(t)
	files := nodeTree(s.nodes["gpu-1"])
	if !strings.Contains(files["etc/os-release"], `PRETTY_NAME="Ubuntu 24.04.1 LTS"`) || !strings.Contains(files["etc/os-release"], "ID=ubuntu\n") ||
		!strings.Contains(files["etc/os-release"], `VERSION_ID="24.04"`) {
		t.Errorf("os-release:\n%s", files["etc/os-release"])
	}
	if files["proc/sys/kernel/osrelease"] != s.nodes["gpu-1"].Pool.NodeInfo.KernelVersion+"\n" || files["proc/sys/kernel/hostname"] != "gpu-1\n" {
		t.Errorf("kernel %q host %q", files["proc/sys/kernel/osrelease"], files["proc/sys/kernel/hostname"])
	}
	gpus := 0
	for p, v := range files {
		if strings.HasSuffix(p, "/vendor") && v == "0x10de\n" {
			gpus++
			if d := files[strings.TrimSuffix(p, "vendor")+"device"]; d != "0x2330\n" {
				t.Errorf("%s device %q", p, d)
			}
		}
	}
	if gpus != 8 || !strings.Contains(files["proc/modules"], "nvidia_uvm ") || strings.Count(files["proc/cpuinfo"], "processor") != 192 {
		t.Errorf("gpus %d modules %q cpus %d", gpus, files["proc/modules"], strings.Count(files["proc/cpuinfo"], "processor"))
	}
	if sys := nodeTree(s.nodes["system-0"]); strings.Contains(sys["proc/modules"], "nvidia") || sys["sys/module/nvidia/version"] != "" {
		t.Error("system node has no NVIDIA driver")
	}
	if got := osRelease("Red Hat Enterprise Linux 9.4 (Plow)"); !strings.Contains(got, "ID=rhel\n") || !strings.Contains(got, `VERSION_ID="9.4"`) {
		t.Errorf("rhel: %s", got)
	}
}

// TestRunProcess runs a real process through the container helper: a
// hostPath volume shows the node tree, the termination message and exit
// code come back, env and args are resolved. Needs root (mount namespaces).
func TestRunProcess(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for mount and PID namespaces")
	}
	sh, err := filepath.EvalSymlinks("/bin/sh")
	if err != nil {
		t.Skip("no /bin/sh")
	}
	s := testSim(t)
	dir := t.TempDir()
	rt, err := NewRuntime(RuntimeOptions{Images: map[string]string{"example.com/sh": sh}, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	s.SetRuntime(rt)
	changed := make(chan string, 100)
	rt.notify = func(key string) { changed <- key }
	// Only shell builtins: the "image" holds nothing but the mapped binary.
	script := `while read l; do case $l in ID=*) echo $l;; esac; done < /host/etc/os-release > /dev/termination-log; ` +
		`echo "node=$NODE" >> /dev/termination-log; read k < /proc/sys/kernel/osrelease; echo $k >> /dev/termination-log; ` +
		`n=0; for d in /sys/bus/pci/devices/*; do n=$((n+1)); done; echo $n >> /dev/termination-log; ` +
		`if (: > /probe) 2>/dev/null; then echo root; else echo nonroot; fi >> /dev/termination-log; exit 3`
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "uid-1"},
		Spec: corev1.PodSpec{
			NodeName:      "gpu-0",
			RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{
				Name: "c", Image: "example.com/sh:latest",
				Command:         []string{filepath.Base(sh), "-c", script},
				Env:             []corev1.EnvVar{{Name: "NODE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}}},
				VolumeMounts:    []corev1.VolumeMount{{Name: "etc", MountPath: "/host/etc", ReadOnly: true}},
				SecurityContext: &corev1.SecurityContext{RunAsUser: ptr.To[int64](65534)},
			}},
			Volumes: []corev1.Volume{{Name: "etc", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/etc", Type: ptr.To(corev1.HostPathDirectory)}}}},
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr := rt.ensure(ctx, pod, s.nodes["gpu-0"], "127.16.0.2")
	select {
	case <-pr.done:
	case <-time.After(30 * time.Second):
		t.Fatal("container did not finish")
	}
	st := pr.status(pod, &corev1.PodStatus{}, time.Now())
	term := st.ContainerStatuses[0].State.Terminated
	if st.Phase != corev1.PodFailed || term == nil || term.ExitCode != 3 || term.Reason != "Error" {
		log, _ := os.ReadFile(filepath.Join(pr.dir, "c.log"))
		t.Fatalf("phase %s state %+v log %s", st.Phase, st.ContainerStatuses[0].State, log)
	}
	// PCI functions: the host bridge, 8 GPUs and 8 InfiniBand HCAs.
	want := "ID=ubuntu\nnode=gpu-0\n" + s.nodes["gpu-0"].Pool.NodeInfo.KernelVersion + "\n17\nnonroot\n"
	if term.Message != want {
		t.Errorf("termination message %q, want %q", term.Message, want)
	}
	// A command the image does not have is a StartError.
	pod2 := pod.DeepCopy()
	pod2.Name, pod2.UID = "p2", "uid-2"
	pod2.Spec.Containers[0].Command = []string{"bash"}
	pr = rt.ensure(ctx, pod2, s.nodes["gpu-0"], "127.16.0.3")
	<-pr.done
	st = pr.status(pod2, &corev1.PodStatus{}, time.Now())
	if term := st.ContainerStatuses[0].State.Terminated; term == nil || term.Reason != "StartError" || term.ExitCode != 128 {
		t.Errorf("start error: %+v", st.ContainerStatuses[0].State)
	}
	// A running process shows Running and is killed when the pod is deleted
	// (SIGTERM is ignored by PID 1 without a handler: SIGKILL after grace).
	pod3 := pod.DeepCopy()
	pod3.Name, pod3.UID = "p3", "uid-3"
	pod3.Spec.Containers[0].Command = []string{filepath.Base(sh), "-c", "while :; do :; done"}
	pr = rt.ensure(ctx, pod3, s.nodes["gpu-0"], "127.16.0.4")
	deadline := time.After(20 * time.Second)
	for pr.status(pod3, &corev1.PodStatus{}, time.Now()).Phase != corev1.PodRunning {
		select {
		case <-changed:
		case <-deadline:
			t.Fatal("never Running")
		}
	}
	stopped, first := rt.Stop("ns/p3", 200*time.Millisecond)
	if again, firstAgain := rt.Stop("ns/p3", 0); !first || firstAgain || again != stopped {
		t.Errorf("stop: first %v, again first %v, same channel %v", first, firstAgain, again == stopped)
	}
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("process not killed after pod deletion")
	}
	select {
	case <-pr.done:
	default:
		t.Error("reported stopped before the process ended")
	}
	if ch, _ := rt.Stop("ns/p3", 0); ch != nil {
		t.Error("a stopped pod is still stopping")
	}
	// A container that exits on SIGTERM is not restarted once its pod is
	// being deleted, whatever its restart policy: the pod is gone well
	// before its grace period ends.
	pod4 := pod.DeepCopy()
	pod4.Name, pod4.UID = "p4", "uid-4"
	pod4.Spec.RestartPolicy = corev1.RestartPolicyAlways
	pod4.Spec.Containers[0].Command = []string{filepath.Base(sh), "-c", "trap 'exit 0' TERM; echo trapping; while :; do :; done"}
	pr = rt.ensure(ctx, pod4, s.nodes["gpu-0"], "127.16.0.5")
	// SIGTERM only once the shell handles it (PID 1 of its PID namespace
	// ignores it until then).
	trapping := time.NewTicker(20 * time.Millisecond)
	defer trapping.Stop()
	deadline = time.After(20 * time.Second)
	for {
		if log, _ := os.ReadFile(filepath.Join(pr.dir, "c.log")); strings.Contains(string(log), "trapping") {
			break
		}
		select {
		case <-trapping.C:
		case <-deadline:
			t.Fatal("p4 never started")
		}
	}
	rt.Stop("ns/p4", time.Hour)
	select {
	case <-pr.done:
	case <-time.After(10 * time.Second):
		st := pr.status(pod4, &corev1.PodStatus{}, time.Now())
		log, _ := os.ReadFile(filepath.Join(pr.dir, "c.log"))
		t.Fatalf("a container that exited on SIGTERM was restarted while its pod is being deleted: %+v log %s", st.ContainerStatuses, log)
	}
	rt.Shutdown()
}

// TestPublishDelay: non-terminal statuses are published once they have held
// for statusSettle (a change restarts the wait); terminal ones at once.
func TestPublishDelay(t *testing.T) {
	pr := &podRun{}
	t0 := time.Unix(1000, 0)
	pending := &corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: []corev1.ContainerStatus{{Name: "c",
		State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}}}}
	if d := pr.publishDelay(pending, t0); d != statusSettle {
		t.Fatalf("first look: wait %v", d)
	}
	if d := pr.publishDelay(pending, t0.Add(400*time.Millisecond)); d != statusSettle-400*time.Millisecond {
		t.Fatalf("same status later: wait %v", d)
	}
	running := pending.DeepCopy()
	running.Phase = corev1.PodRunning
	running.ContainerStatuses[0].State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
	if d := pr.publishDelay(running, t0.Add(500*time.Millisecond)); d != statusSettle {
		t.Fatalf("changed status: wait %v", d)
	}
	if d := pr.publishDelay(running, t0.Add(1600*time.Millisecond)); d != 0 {
		t.Fatalf("settled status: wait %v", d)
	}
	done := running.DeepCopy()
	done.Phase = corev1.PodSucceeded
	if d := (&podRun{}).publishDelay(done, t0); d != 0 {
		t.Fatalf("terminal status: wait %v", d)
	}
}

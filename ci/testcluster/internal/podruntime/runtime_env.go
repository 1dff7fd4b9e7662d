package podruntime

import (
	"context"
	"fmt"
	"math"
	"path"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// imageRepository strips the tag and digest from an image reference:
// "ghcr.io/a/b:v1@sha256:..." -> "ghcr.io/a/b".
func imageRepository(image string) string {
	if i := strings.Index(image, "@"); i >= 0 {
		image = image[:i]
	}
	if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
		image = image[:i]
	}
	return image
}

// ImageUser is the user an image runs as (its USER), by number.
type ImageUser struct{ UID, GID uint32 }

// ParseRunImage parses a --run-image value "REPOSITORY=BINARY[,user=UID[:GID]]";
// user is the image's USER (default root), GID defaulting to UID.
func ParseRunImage(v string) (repo, binary string, user ImageUser, err error) {
	mapping, userSpec, hasUser := strings.Cut(v, ",user=")
	repo, binary, ok := strings.Cut(mapping, "=")
	if !ok || repo == "" || binary == "" {
		return "", "", user, fmt.Errorf("--run-image %q: expected REPOSITORY=/path/to/binary[,user=UID[:GID]]", v)
	}
	if imageRepository(repo) != repo {
		return "", "", user, fmt.Errorf("--run-image %q: give the repository without tag or digest", v)
	}
	if hasUser {
		if user, err = ParseImageUser(userSpec); err != nil {
			return "", "", user, fmt.Errorf("--run-image %q: %w", v, err)
		}
	}
	return repo, binary, user, nil
}

// ParseImageUser parses "UID[:GID]" (numbers; GID defaults to UID).
func ParseImageUser(v string) (ImageUser, error) {
	us, gs, hasG := strings.Cut(v, ":")
	uid, err := strconv.ParseUint(us, 10, 32)
	if err != nil {
		return ImageUser{}, fmt.Errorf("user %q: want UID[:GID] as numbers", v)
	}
	gid := uid
	if hasG {
		if gid, err = strconv.ParseUint(gs, 10, 32); err != nil {
			return ImageUser{}, fmt.Errorf("user %q: want UID[:GID] as numbers", v)
		}
	}
	return ImageUser{UID: uint32(uid), GID: uint32(gid)}, nil
}

// expandVars applies Kubernetes' $(VAR) expansion: references to defined
// variables are replaced, "$$" is an escaped "$", anything else stays as is.
func expandVars(s string, vars map[string]string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+2+end]
			if v, ok := vars[name]; ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

// podFields is what fieldRef env vars can refer to.
type podFields struct {
	pod    *corev1.Pod
	podIP  string
	hostIP string
}

func (f podFields) field(p string) (string, error) {
	pod := f.pod
	switch p {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.podIP", "status.podIPs":
		return f.podIP, nil
	case "status.hostIP", "status.hostIPs":
		return f.hostIP, nil
	}
	for prefix, m := range map[string]map[string]string{"metadata.labels": pod.Labels, "metadata.annotations": pod.Annotations} {
		if strings.HasPrefix(p, prefix+"['") && strings.HasSuffix(p, "']") {
			return m[p[len(prefix)+2:len(p)-2]], nil
		}
	}
	return "", fmt.Errorf("unsupported fieldRef %q", p)
}

// resourceField resolves a resourceFieldRef like the kubelet: limits fall
// back to the node's allocatable, values are rounded up to the divisor.
func resourceField(c *corev1.Container, ref *corev1.ResourceFieldSelector, allocatable corev1.ResourceList) (string, error) {
	kind, name, ok := strings.Cut(ref.Resource, ".")
	if !ok || (kind != "limits" && kind != "requests") {
		return "", fmt.Errorf("unsupported resourceFieldRef %q", ref.Resource)
	}
	rn := corev1.ResourceName(name)
	var q resource.Quantity
	var found bool
	if kind == "limits" {
		q, found = c.Resources.Limits[rn]
		if !found {
			q, found = allocatable[rn]
		}
	} else {
		q, found = c.Resources.Requests[rn]
	}
	if !found {
		return "0", nil
	}
	divisor := ref.Divisor
	if divisor.IsZero() {
		divisor = resource.MustParse("1")
	}
	v := math.Ceil(float64(q.MilliValue()) / float64(divisor.MilliValue()))
	return strconv.FormatInt(int64(v), 10), nil
}

// envSource reads ConfigMaps and Secrets for env and envFrom.
type envSource interface {
	configMap(ctx context.Context, ns, name string) (map[string]string, error)
	secret(ctx context.Context, ns, name string) (map[string]string, error)
}

type apiEnvSource struct{ client kubernetes.Interface }

func (a apiEnvSource) configMap(ctx context.Context, ns, name string) (map[string]string, error) {
	cm, err := a.client.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return cm.Data, nil
}

func (a apiEnvSource) secret(ctx context.Context, ns, name string) (map[string]string, error) {
	s, err := a.client.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for k, v := range s.Data {
		out[k] = string(v)
	}
	return out, nil
}

// containerEnv resolves a container's environment in the kubelet's order:
// base variables, envFrom, then env (each value expanded against what is
// defined before it). It returns the variables as a sorted KEY=VALUE list
// and as a map for command expansion.
func containerEnv(ctx context.Context, c *corev1.Container, f podFields, allocatable corev1.ResourceList,
	src envSource, base map[string]string) ([]string, map[string]string, error) {
	vars := map[string]string{}
	for k, v := range base {
		vars[k] = v
	}
	ns := f.pod.Namespace
	for _, from := range c.EnvFrom {
		var data map[string]string
		var err error
		var optional bool
		switch {
		case from.ConfigMapRef != nil:
			optional = from.ConfigMapRef.Optional != nil && *from.ConfigMapRef.Optional
			data, err = src.configMap(ctx, ns, from.ConfigMapRef.Name)
		case from.SecretRef != nil:
			optional = from.SecretRef.Optional != nil && *from.SecretRef.Optional
			data, err = src.secret(ctx, ns, from.SecretRef.Name)
		}
		if err != nil {
			if optional {
				continue
			}
			return nil, nil, fmt.Errorf("envFrom: %w", err)
		}
		for k, v := range data {
			vars[from.Prefix+k] = v
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			vars[e.Name] = expandVars(e.Value, vars)
			continue
		}
		vf := e.ValueFrom
		var v string
		var err error
		switch {
		case vf.FieldRef != nil:
			v, err = f.field(vf.FieldRef.FieldPath)
		case vf.ResourceFieldRef != nil:
			v, err = resourceField(c, vf.ResourceFieldRef, allocatable)
		case vf.ConfigMapKeyRef != nil:
			ref := vf.ConfigMapKeyRef
			v, err = lookupKey(ctx, src.configMap, ns, ref.Name, ref.Key, ref.Optional)
		case vf.SecretKeyRef != nil:
			ref := vf.SecretKeyRef
			v, err = lookupKey(ctx, src.secret, ns, ref.Name, ref.Key, ref.Optional)
		default:
			err = fmt.Errorf("unsupported valueFrom")
		}
		if err != nil {
			return nil, nil, fmt.Errorf("env %s: %w", e.Name, err)
		}
		vars[e.Name] = v
	}
	list := make([]string, 0, len(vars))
	for k, v := range vars {
		list = append(list, k+"="+v)
	}
	sort.Strings(list)
	return list, vars, nil
}

func lookupKey(ctx context.Context, get func(context.Context, string, string) (map[string]string, error),
	ns, name, key string, optional *bool) (string, error) {
	data, err := get(ctx, ns, name)
	if err == nil {
		if v, ok := data[key]; ok {
			return v, nil
		}
		err = fmt.Errorf("key %q not found in %s/%s", key, ns, name)
	}
	if optional != nil && *optional {
		return "", nil
	}
	return "", err
}

// containerArgv builds argv like a container runtime whose image has the
// mapped binary as entrypoint and no CMD: command replaces the entrypoint,
// args follow; $(VAR) references are expanded. command[0] must name the
// binary (by base name or any path ending in it); anything else is not in
// the image.
func containerArgv(c *corev1.Container, binary string, vars map[string]string) ([]string, error) {
	base := path.Base(binary)
	var argv []string
	if len(c.Command) == 0 {
		argv = append(argv, base)
	} else {
		if path.Base(c.Command[0]) != base {
			return nil, fmt.Errorf("exec: %q: executable file not found in $PATH (the image only has %s)", c.Command[0], base)
		}
		for _, a := range c.Command {
			argv = append(argv, expandVars(a, vars))
		}
	}
	for _, a := range c.Args {
		argv = append(argv, expandVars(a, vars))
	}
	return argv, nil
}

// terminatedReason is the kubelet's reason for an exit code.
func terminatedReason(code int32) string {
	if code == 0 {
		return "Completed"
	}
	return "Error"
}

// terminationMessage is what the kubelet reports as state.terminated.message:
// the file at terminationMessagePath (at most 4096 bytes), or with
// FallbackToLogsOnError and a failed, silent container, the log tail (last
// 80 lines, at most 2048 bytes).
func terminationMessage(file []byte, logTail []byte, code int32, policy corev1.TerminationMessagePolicy) string {
	if len(file) > 4096 {
		file = file[:4096]
	}
	if len(file) > 0 || code == 0 || policy != corev1.TerminationMessageFallbackToLogsOnError {
		return string(file)
	}
	lines := strings.Split(strings.TrimRight(string(logTail), "\n"), "\n")
	if len(lines) > 80 {
		lines = lines[len(lines)-80:]
	}
	msg := strings.Join(lines, "\n")
	if len(msg) > 2048 {
		msg = msg[len(msg)-2048:]
	}
	return msg
}

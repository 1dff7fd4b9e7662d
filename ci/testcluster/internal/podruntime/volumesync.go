package podruntime

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/klog/v2"
)

// ConfigMap, Secret and projected volumes are written like the kubelet's
// atomic writer does and kept up to date while the pod runs, since operators
// rely on it (the Prometheus Operator rewrites a Secret when a ServiceMonitor
// appears and the config reloader sidecar watches the mounted file).

// volumeSyncPeriod is how often a running pod's ConfigMap, Secret and
// projected volumes are compared with their sources. The kubelet takes up to
// about a minute; a poll is simpler than informer handlers (it works with any
// envSource and needs no wiring per pod) and cheap, as rt.env reads the
// informer cache. It also paces the retries of a pod waiting for a source.
var volumeSyncPeriod = 2 * time.Second

// dataLink is the atomic writer's symlink to the current timestamped dir.
const dataLink = "..data"

// writeFiles writes a volume the way the kubelet's atomic writer does: the
// files go into a new <dir>/..<timestamp>.<random> dir, <dir>/..data is
// swapped to it with one rename and every top-level name is a symlink into
// ..data, so a refresh changes the whole content at once for readers and
// fsnotify watchers of dir (the dir itself is what containers bind-mount).
func writeFiles(dir string, files map[string][]byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	old, _ := os.Readlink(filepath.Join(dir, dataLink))
	ts, err := os.MkdirTemp(dir, time.Now().UTC().Format("..2006_01_02_15_04_05."))
	if err != nil {
		return fmt.Errorf("volume dir %s: %w", dir, err)
	}
	tops, err := writePayload(ts, files)
	if err != nil {
		os.RemoveAll(ts)
		return fmt.Errorf("volume dir %s: %w", dir, err)
	}
	tmp := filepath.Join(dir, "..data_tmp")
	_ = os.Remove(tmp)
	if err := os.Symlink(filepath.Base(ts), tmp); err != nil {
		os.RemoveAll(ts)
		return fmt.Errorf("volume dir %s: %w", dir, err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, dataLink)); err != nil {
		os.RemoveAll(ts)
		return fmt.Errorf("volume dir %s: swapping %s: %w", dir, dataLink, err)
	}
	if err := linkTopLevel(dir, tops); err != nil {
		return fmt.Errorf("volume dir %s: %w", dir, err)
	}
	if old != "" && old != filepath.Base(ts) && strings.HasPrefix(old, "..") && !strings.Contains(old, "/") {
		if err := os.RemoveAll(filepath.Join(dir, old)); err != nil {
			return fmt.Errorf("volume dir %s: removing the previous content: %w", dir, err)
		}
	}
	return nil
}

// writePayload writes files into the fresh timestamped dir ts (MkdirTemp
// makes it 0700: containers may run as any user) and returns the top-level
// names, which get symlinks.
func writePayload(ts string, files map[string][]byte) (map[string]bool, error) {
	if err := os.Chmod(ts, 0o755); err != nil {
		return nil, err
	}
	tops := map[string]bool{}
	for rel, content := range files {
		clean, err := payloadPath(rel)
		if err != nil {
			return nil, err
		}
		p := filepath.Join(ts, clean)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(p, content, 0o644); err != nil {
			return nil, err
		}
		tops[strings.SplitN(clean, "/", 2)[0]] = true
	}
	return tops, nil
}

// payloadPath cleans a file path of a volume; names starting with ".." are
// refused (as API validation does) since they would clash with ..data.
func payloadPath(rel string) (string, error) {
	clean := strings.TrimPrefix(path.Clean("/"+rel), "/")
	if clean == "" || strings.HasPrefix(clean, "..") {
		return "", fmt.Errorf("invalid volume file path %q", rel)
	}
	return clean, nil
}

// linkTopLevel makes every name of tops a symlink into ..data and removes
// the links of names the new content no longer has.
func linkTopLevel(dir string, tops map[string]bool) error {
	for name := range tops {
		p := filepath.Join(dir, name)
		if fi, err := os.Lstat(p); err == nil && fi.Mode()&os.ModeSymlink != 0 {
			continue // always ..data/<name>
		}
		if err := os.Symlink(path.Join(dataLink, name), p); err != nil {
			return err
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "..") && !tops[e.Name()] && e.Type()&os.ModeSymlink != 0 {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// readPayload returns the current content of a volume written by
// writeFiles, keyed by clean relative path.
func readPayload(dir string) (map[string][]byte, error) {
	root := filepath.Join(dir, dataLink)
	files := map[string][]byte{}
	err := filepath.WalkDir(root+"/", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		files[filepath.ToSlash(rel)] = b
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading volume %s: %w", dir, err)
	}
	return files, nil
}

// syncable reports whether a volume has content from ConfigMaps or Secrets,
// which the kubelet keeps up to date.
func syncable(v *corev1.Volume) bool {
	if v.ConfigMap != nil || v.Secret != nil {
		return true
	}
	if v.Projected != nil {
		for _, src := range v.Projected.Sources {
			if src.ConfigMap != nil || src.Secret != nil {
				return true
			}
		}
	}
	return false
}

// volumePayload computes a syncable volume's files from its sources. Files
// of token and downward API sources are taken from prev (the content
// written at pod start): tokens are not rotated and the pod's fields do not
// change here. A missing optional object contributes nothing; a missing
// non-optional object or item key is an error, as for the kubelet.
func (rt *Runtime) volumePayload(ctx context.Context, ns string, v *corev1.Volume, prev map[string][]byte) (map[string][]byte, error) {
	files := map[string][]byte{}
	switch {
	case v.ConfigMap != nil:
		err := rt.addSource(ctx, files, "configmap", ns, v.ConfigMap.Name, v.ConfigMap.Optional, v.ConfigMap.Items)
		return files, err
	case v.Secret != nil:
		err := rt.addSource(ctx, files, "secret", ns, v.Secret.SecretName, v.Secret.Optional, v.Secret.Items)
		return files, err
	case v.Projected == nil:
		return files, nil
	}
	keep := func(p string) {
		if clean, err := payloadPath(p); err == nil {
			if b, ok := prev[clean]; ok {
				files[clean] = b
			}
		}
	}
	for _, src := range v.Projected.Sources {
		var err error
		switch {
		case src.ConfigMap != nil:
			err = rt.addSource(ctx, files, "configmap", ns, src.ConfigMap.Name, src.ConfigMap.Optional, src.ConfigMap.Items)
		case src.Secret != nil:
			err = rt.addSource(ctx, files, "secret", ns, src.Secret.Name, src.Secret.Optional, src.Secret.Items)
		case src.ServiceAccountToken != nil:
			keep(src.ServiceAccountToken.Path)
		case src.DownwardAPI != nil:
			for _, item := range src.DownwardAPI.Items {
				keep(item.Path)
			}
		}
		if err != nil {
			return nil, err
		}
	}
	return files, nil
}

// addSource adds the files of one ConfigMap or Secret (all keys, or the
// listed items) under clean paths, so payloads compare with readPayload's.
func (rt *Runtime) addSource(ctx context.Context, files map[string][]byte, kind, ns, name string, optional *bool, items []corev1.KeyToPath) error {
	get := rt.env.configMap
	if kind == "secret" {
		get = rt.env.secret
	}
	data, err := get(ctx, ns, name)
	if err != nil {
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("reading %s %q: %w", kind, name, err)
		}
		if optional != nil && *optional {
			return nil
		}
		return err // names the object
	}
	add := func(p, v string) error {
		clean, err := payloadPath(p)
		if err != nil {
			return fmt.Errorf("%s %q: %w", kind, name, err)
		}
		files[clean] = []byte(v)
		return nil
	}
	if len(items) == 0 {
		for k, v := range data {
			if err := add(k, v); err != nil {
				return err
			}
		}
		return nil
	}
	for _, it := range items {
		v, ok := data[it.Key]
		if !ok {
			if optional != nil && *optional {
				continue
			}
			return fmt.Errorf("%s %q has no key %q", kind, name, it.Key)
		}
		if err := add(it.Path, v); err != nil {
			return err
		}
	}
	return nil
}

// awaitVolumeSources waits, as a kubelet does (the pod stays
// ContainerCreating), until every non-optional ConfigMap and Secret (and
// item key) its volumes need exists, instead of failing the pod for good:
// the object is often created by an operator at about the same time. False
// when the pod went away meanwhile.
func (rt *Runtime) awaitVolumeSources(ctx context.Context, pod *corev1.Pod, pr *podRun) bool {
	delay := 100 * time.Millisecond
	var logged string
	for {
		err := rt.volumeSourcesReady(ctx, pod)
		if err == nil {
			if logged != "" {
				klog.InfoS("sim runtime: pod volume sources present", "pod", pr.key)
			}
			return true
		}
		if msg := err.Error(); msg != logged && ctx.Err() == nil {
			klog.InfoS("sim runtime: pod waits for a volume source", "pod", pr.key, "err", err)
			logged = msg
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(delay):
		}
		if rt.get(pr.key) != pr {
			return false // deleted: no need to wait for the grace period
		}
		delay = min(2*delay, volumeSyncPeriod)
	}
}

// volumeSourcesReady returns the first missing source of the pod's volumes.
func (rt *Runtime) volumeSourcesReady(ctx context.Context, pod *corev1.Pod) error {
	for i := range pod.Spec.Volumes {
		v := &pod.Spec.Volumes[i]
		if !syncable(v) {
			continue
		}
		if _, err := rt.volumePayload(ctx, pod.Namespace, v, nil); err != nil {
			return fmt.Errorf("volume %q: %w", v.Name, err)
		}
	}
	return nil
}

// syncedVolume is a volume kept up to date while its pod runs.
type syncedVolume struct {
	vol     corev1.Volume
	dir     string
	first   map[string][]byte // content at pod start (token, downward API files)
	written map[string][]byte // content last written
	lastErr string            // last refresh error logged
}

// startVolumeSync keeps the pod's ConfigMap, Secret and projected volumes
// up to date until the returned stop is called (when the pod ends); stop
// waits, so nothing is written once the pod dir may be removed.
func (rt *Runtime) startVolumeSync(ctx context.Context, pod *corev1.Pod, pr *podRun) (stop func()) {
	var vols []*syncedVolume
	for _, v := range pod.Spec.Volumes {
		if !syncable(&v) {
			continue
		}
		dir := filepath.Join(pr.dir, "volumes", v.Name)
		cur, err := readPayload(dir)
		if err != nil {
			klog.InfoS("sim runtime: volume not refreshed", "pod", pr.key, "volume", v.Name, "err", err)
			continue
		}
		vols = append(vols, &syncedVolume{vol: v, dir: dir, first: cur, written: cur})
	}
	if len(vols) == 0 {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		rt.syncVolumes(ctx, pod.Namespace, pr.key, vols)
	}()
	return func() { cancel(); <-done }
}

// syncVolumes refreshes vols every volumeSyncPeriod until ctx ends.
func (rt *Runtime) syncVolumes(ctx context.Context, ns, key string, vols []*syncedVolume) {
	t := time.NewTicker(volumeSyncPeriod)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, sv := range vols {
			err := rt.refreshVolume(ctx, ns, sv)
			if msg := fmt.Sprint(err); err != nil && msg != sv.lastErr && ctx.Err() == nil {
				// Like the kubelet, keep the previous content.
				klog.InfoS("sim runtime: volume refresh failed", "pod", key, "volume", sv.vol.Name, "err", err)
				sv.lastErr = msg
			} else if err == nil {
				sv.lastErr = ""
			}
		}
	}
}

// refreshVolume rewrites the volume when its sources changed.
func (rt *Runtime) refreshVolume(ctx context.Context, ns string, sv *syncedVolume) error {
	files, err := rt.volumePayload(ctx, ns, &sv.vol, sv.first)
	if err != nil {
		return err
	}
	if samePayload(files, sv.written) {
		return nil
	}
	if err := writeFiles(sv.dir, files); err != nil {
		return err
	}
	sv.written = files
	return nil
}

func samePayload(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || !bytes.Equal(v, w) {
			return false
		}
	}
	return true
}

// Package upstream installs real upstream components (built from their Go
// modules by ci/upstream/build.sh) into the cluster the way a provider does:
// their own CRDs and RBAC, their controller as a Deployment whose image the
// process runtime maps to the built binary, then the objects a provider
// writes (a Prometheus to run, ...). Nothing here simulates a component: it
// only applies manifests and waits until what they declare runs.
package upstream

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"

	"aiconform.dev/testcluster/internal/podruntime"
)

// fieldManager owns what the stack applies (server-side apply).
const fieldManager = "aiconform-testcluster-upstream"

// Component is one upstream component of a build directory.
type Component struct {
	Name string
	// Manifests in apply order (CRDs are applied first whatever their place).
	Manifests []string
}

// Image is one image repository the stack runs, mapped to its binary.
type Image struct {
	Repository string
	Binary     string
	Version    string
	// User is the image's USER (zero: root).
	User podruntime.ImageUser
}

// Images reads <dir>/images.txt (`REPOSITORY=BINARY VERSION [UID:GID]` lines,
// BINARY relative to <dir>/bin, the last field the image's USER) and resolves
// each binary, which must exist.
func Images(dir string) ([]Image, error) {
	f, err := os.Open(filepath.Join(dir, "images.txt"))
	if err != nil {
		return nil, fmt.Errorf("upstream build %s: %w (build it with ci/upstream/build.sh)", dir, err)
	}
	defer f.Close()
	return parseImages(f, filepath.Join(dir, "bin"))
}

// parseImages parses images.txt content; binaries are looked up in binDir.
func parseImages(r io.Reader, binDir string) ([]Image, error) {
	var out []Image
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		fields := strings.Fields(text)
		repo, bin, ok := strings.Cut(fields[0], "=")
		if !ok || repo == "" || bin == "" || filepath.IsAbs(bin) || strings.Contains(bin, "..") {
			return nil, fmt.Errorf("images.txt line %d: want REPOSITORY=BINARY VERSION (BINARY relative to bin/), got %q", line, text)
		}
		path := filepath.Join(binDir, bin)
		if st, err := os.Stat(path); err != nil || st.IsDir() {
			return nil, fmt.Errorf("images.txt line %d: binary %s is missing (run ci/upstream/build.sh)", line, path)
		}
		im := Image{Repository: repo, Binary: path}
		if len(fields) > 1 {
			im.Version = fields[1]
		}
		if len(fields) > 2 {
			user, err := podruntime.ParseImageUser(fields[2])
			if err != nil {
				return nil, fmt.Errorf("images.txt line %d: %w", line, err)
			}
			im.User = user
		}
		if len(fields) > 3 {
			return nil, fmt.Errorf("images.txt line %d: want REPOSITORY=BINARY VERSION [UID:GID], got %q", line, text)
		}
		out = append(out, im)
	}
	return out, sc.Err()
}

// Components lists <dir>/manifests/<name>/ for the wanted names (all when
// empty), with their YAML files in path order.
func Components(dir string, want []string) ([]Component, error) {
	root := filepath.Join(dir, "manifests")
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("upstream manifests: %w (build them with ci/upstream/build.sh)", err)
	}
	found := map[string]Component{}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		c := Component{Name: e.Name()}
		err := filepath.WalkDir(filepath.Join(root, e.Name()), func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
				c.Manifests = append(c.Manifests, p)
			}
			return err
		})
		if err != nil {
			return nil, err
		}
		sort.Strings(c.Manifests)
		found[c.Name] = c
	}
	if len(want) == 0 {
		for name := range found {
			want = append(want, name)
		}
		sort.Strings(want)
	}
	var out []Component
	for _, name := range want {
		c, ok := found[name]
		if !ok {
			return nil, fmt.Errorf("upstream component %q is not built in %s (built: %s)", name, dir, strings.Join(keys(found), ", "))
		}
		out = append(out, c)
	}
	return out, nil
}

func keys(m map[string]Component) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// decodeFile splits a multi-document YAML file into objects (empty
// documents and List kinds' items flattened).
func decodeFile(path string) ([]*unstructured.Unstructured, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var out []*unstructured.Unstructured
	for {
		var obj map[string]interface{}
		if err := dec.Decode(&obj); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if len(obj) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: obj}
		if u.GetKind() == "" || u.GetAPIVersion() == "" {
			return nil, fmt.Errorf("%s: a document without apiVersion/kind", path)
		}
		out = append(out, u)
	}
}

// Installer applies components' manifests with server-side apply.
type Installer struct {
	dyn      dynamic.Interface
	disc     discovery.CachedDiscoveryInterface
	mapper   *restmapper.DeferredDiscoveryRESTMapper
	progress func(format string, args ...interface{})
}

// NewInstaller builds the clients.
func NewInstaller(cfg *rest.Config, progress func(string, ...interface{})) (*Installer, error) {
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	cached := memory.NewMemCacheClient(dc)
	return &Installer{dyn: dyn, disc: cached, mapper: restmapper.NewDeferredDiscoveryRESTMapper(cached), progress: progress}, nil
}

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// Install installs the components one after the other, each running
// before the next is applied (a component's webhooks may intercept the next
// one's objects): its CRDs first (until Established), then its other
// objects in manifest order until its workloads run, then the objects of its
// own kinds (retried while its webhooks come up) until what they make runs.
func (in *Installer) Install(ctx context.Context, comps []Component) error {
	for _, c := range comps {
		if err := in.installOne(ctx, c); err != nil {
			return fmt.Errorf("%s: %w", c.Name, err)
		}
	}
	return nil
}

func (in *Installer) installOne(ctx context.Context, c Component) error {
	var crds, rest []*unstructured.Unstructured
	for _, path := range c.Manifests {
		objs, err := decodeFile(path)
		if err != nil {
			return err
		}
		for _, o := range objs {
			if o.GetKind() == "CustomResourceDefinition" {
				crds = append(crds, o)
			} else {
				rest = append(rest, o)
			}
		}
	}
	for _, o := range crds {
		if _, err := in.dyn.Resource(crdGVR).Apply(ctx, o.GetName(), o, metav1.ApplyOptions{FieldManager: fieldManager, Force: true}); err != nil {
			return fmt.Errorf("applying CRD %s: %w", o.GetName(), err)
		}
	}
	for _, o := range crds {
		if err := in.waitEstablished(ctx, o.GetName()); err != nil {
			return err
		}
	}
	own := ownKinds(crds)
	var plain, custom []*unstructured.Unstructured
	for _, o := range rest {
		if own[o.GroupVersionKind().GroupKind()] {
			custom = append(custom, o)
			continue
		}
		if err := in.apply(ctx, o); err != nil {
			return err
		}
		plain = append(plain, o)
	}
	if err := in.waitWorkloads(ctx, plain); err != nil {
		return err
	}
	for _, o := range custom {
		if err := in.applyWhenAdmitted(ctx, o); err != nil {
			return err
		}
	}
	if err := in.waitWorkloads(ctx, custom); err != nil {
		return err
	}
	in.progress("upstream: %s running (%d CRDs, %d objects)", c.Name, len(crds), len(rest))
	return nil
}

// ownKinds are the kinds the component's CRDs define: objects of these kinds
// are the component's to act on (and may pass its webhooks), so they are
// applied once its workloads run.
func ownKinds(crds []*unstructured.Unstructured) map[schema.GroupKind]bool {
	out := map[schema.GroupKind]bool{}
	for _, c := range crds {
		group, _, _ := unstructured.NestedString(c.Object, "spec", "group")
		kind, _, _ := unstructured.NestedString(c.Object, "spec", "names", "kind")
		out[schema.GroupKind{Group: group, Kind: kind}] = true
	}
	return out
}

// applyWhenAdmitted retries an apply while the component's webhooks are not
// serving yet (their certificates are still being made).
func (in *Installer) applyWhenAdmitted(ctx context.Context, o *unstructured.Unstructured) error {
	var last error
	err := poll(ctx, fmt.Sprintf("%s %s accepted", o.GetKind(), o.GetName()), func() (bool, string, error) {
		last = in.apply(ctx, o)
		if last == nil {
			return true, "", nil
		}
		return false, last.Error(), nil
	})
	if err != nil && last != nil {
		return last
	}
	return err
}

func names(comps []Component) string {
	var out []string
	for _, c := range comps {
		out = append(out, c.Name)
	}
	return strings.Join(out, ", ")
}

// apply server-side applies one object; namespaced objects without a
// namespace go to `default`, as kubectl apply would put them.
func (in *Installer) apply(ctx context.Context, o *unstructured.Unstructured) error {
	gvk := o.GroupVersionKind()
	m, err := in.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		// A CRD just Established may not be in the cached discovery yet.
		in.disc.Invalidate()
		in.mapper.Reset()
		m, err = in.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", gvk.Kind, o.GetName(), err)
	}
	var ri dynamic.ResourceInterface = in.dyn.Resource(m.Resource)
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		if o.GetNamespace() == "" {
			o.SetNamespace("default")
		}
		if err := in.ensureNamespace(ctx, o.GetNamespace()); err != nil {
			return err
		}
		ri = in.dyn.Resource(m.Resource).Namespace(o.GetNamespace())
	}
	data, err := o.MarshalJSON()
	if err != nil {
		return err
	}
	if _, err := ri.Patch(ctx, o.GetName(), types.ApplyPatchType, data, metav1.PatchOptions{FieldManager: fieldManager, Force: ptrTrue()}); err != nil {
		return fmt.Errorf("applying %s %s/%s: %w", gvk.Kind, o.GetNamespace(), o.GetName(), err)
	}
	return nil
}

func ptrTrue() *bool { t := true; return &t }

var nsGVR = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}

func (in *Installer) ensureNamespace(ctx context.Context, name string) error {
	ns := &unstructured.Unstructured{Object: map[string]interface{}{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]interface{}{"name": name}}}
	_, err := in.dyn.Resource(nsGVR).Create(ctx, ns, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("namespace %s: %w", name, err)
	}
	return nil
}

// waitEstablished waits until the CRD's Established condition is True.
func (in *Installer) waitEstablished(ctx context.Context, name string) error {
	return waitObject(ctx, in.dyn.Resource(crdGVR), name, fmt.Sprintf("CRD %s Established", name),
		func(u *unstructured.Unstructured) (bool, string) {
			return conditionTrue(u, "Established"), "not Established"
		})
}

// waitObject watches the object name of ri until check holds or ctx ends;
// the error names what was awaited and the last state seen.
func waitObject(ctx context.Context, ri dynamic.ResourceInterface, name, what string,
	check func(*unstructured.Unstructured) (bool, string)) error {
	byName := fields.OneTermEqualSelector("metadata.name", name).String()
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (k8sruntime.Object, error) {
			o.FieldSelector = byName
			return ri.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = byName
			return ri.Watch(ctx, o)
		},
	}
	last := "not created yet"
	_, err := watchtools.UntilWithSync(ctx, lw, &unstructured.Unstructured{}, nil, func(ev watch.Event) (bool, error) {
		u, ok := ev.Object.(*unstructured.Unstructured)
		if !ok {
			return false, nil
		}
		if ev.Type == watch.Deleted {
			last = "deleted"
			return false, nil
		}
		done, state := check(u)
		last = state
		return done, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for %s: %w (last: %s)", what, err, last)
	}
	return nil
}

// conditionTrue reports whether status.conditions has type t with status True.
func conditionTrue(u *unstructured.Unstructured, t string) bool {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, ok := c.(map[string]interface{})
		if ok && m["type"] == t && m["status"] == "True" {
			return true
		}
	}
	return false
}

var (
	deployGVR     = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	stsGVR        = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "statefulsets"}
	prometheusGVK = schema.GroupKind{Group: "monitoring.coreos.com", Kind: "Prometheus"}
)

// waitWorkloads waits until every applied Deployment has its replicas
// available, and the StatefulSet the Prometheus Operator makes for every
// applied Prometheus has its replicas ready: the operator and the servers it
// runs are up, not only their objects.
func (in *Installer) waitWorkloads(ctx context.Context, objs []*unstructured.Unstructured) error {
	for _, o := range objs {
		switch {
		case o.GroupVersionKind().Group == "apps" && o.GetKind() == "Deployment":
			if err := in.waitReplicas(ctx, deployGVR, o.GetNamespace(), o.GetName(), "availableReplicas"); err != nil {
				return err
			}
		case o.GroupVersionKind().GroupKind() == prometheusGVK:
			if err := in.waitReplicas(ctx, stsGVR, o.GetNamespace(), "prometheus-"+o.GetName(), "readyReplicas"); err != nil {
				return fmt.Errorf("%w (the Prometheus Operator makes it for Prometheus %s/%s)", err, o.GetNamespace(), o.GetName())
			}
		}
	}
	return nil
}

// waitReplicas waits until the workload's status.<field> reaches spec.replicas (at least 1).
func (in *Installer) waitReplicas(ctx context.Context, gvr schema.GroupVersionResource, ns, name, field string) error {
	what := fmt.Sprintf("%s %s/%s ready", strings.TrimSuffix(gvr.Resource, "s"), ns, name)
	return waitObject(ctx, in.dyn.Resource(gvr).Namespace(ns), name, what,
		func(u *unstructured.Unstructured) (bool, string) {
			want, found, _ := unstructured.NestedInt64(u.Object, "spec", "replicas")
			if !found || want < 1 {
				want = 1
			}
			got, _, _ := unstructured.NestedInt64(u.Object, "status", field)
			return got >= want, fmt.Sprintf("%d/%d %s", got, want, field)
		})
}

// poll retries attempt every 250 ms until it succeeds or ctx ends (an apply
// while a component's webhooks come up: nothing to watch); the error names
// what was attempted and its last failure.
func poll(ctx context.Context, what string, cond func() (bool, string, error)) error {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	last := ""
	for {
		ok, state, err := cond()
		if err != nil {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
		if ok {
			return nil
		}
		last = state
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w (last: %s)", what, ctx.Err(), last)
		case <-t.C:
		}
	}
}

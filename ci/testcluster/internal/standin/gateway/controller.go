package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
)

// dataPlane is one Gateway's address, listeners and proxy.
type dataPlane struct {
	ip      string
	proxy   *proxy
	servers map[int32]*http.Server
	// bindErr holds why a listener port could not be opened.
	bindErr map[int32]string
}

type controller struct {
	client kubernetes.Interface
	dyn    dynamic.Interface
	opts   Options
	queue  workqueue.TypedRateLimitingInterface[string]

	classes, gateways, routes, pools cache.GenericLister
	picker                           *endpointPicker
	services                         func(ns, name string) (*corev1.Service, error)
	endpoints                        Endpoints

	planes map[string]*dataPlane // by namespace/name; only the worker touches it
	nextIP int
}

const syncKey = "sync"

func startController(ctx context.Context, client kubernetes.Interface, dyn dynamic.Interface, opts Options) error {
	c := &controller{
		client: client, dyn: dyn, opts: opts,
		queue:  workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]()),
		planes: map[string]*dataPlane{},
	}
	handler := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(interface{}) { c.queue.Add(syncKey) },
		UpdateFunc: func(_, _ interface{}) { c.queue.Add(syncKey) },
		DeleteFunc: func(interface{}) { c.queue.Add(syncKey) },
	}
	df := dynamicinformer.NewDynamicSharedInformerFactory(dyn, 0)
	for _, g := range []schema.GroupVersionResource{classGVR, gwGVR, routeGVR, poolGVR} {
		if _, err := df.ForResource(g).Informer().AddEventHandler(handler); err != nil {
			return err
		}
	}
	c.classes, c.gateways, c.routes = df.ForResource(classGVR).Lister(), df.ForResource(gwGVR).Lister(), df.ForResource(routeGVR).Lister()
	c.pools = df.ForResource(poolGVR).Lister()
	c.picker = newEndpointPicker(opts.EPPIgnoresMetrics)
	kf := opts.Informers
	if kf == nil {
		kf = informers.NewSharedInformerFactory(client, 0)
	}
	svcInf := kf.Core().V1().Services()
	if _, err := svcInf.Informer().AddEventHandler(handler); err != nil {
		return err
	}
	sliceInf := kf.Discovery().V1().EndpointSlices()
	_ = sliceInf.Informer() // requests read endpoints when they arrive
	c.services = func(ns, name string) (*corev1.Service, error) { return svcInf.Lister().Services(ns).Get(name) }
	podInf := kf.Core().V1().Pods()
	_ = podInf.Informer()
	live := func(ns, selector string) ([]*corev1.Pod, error) {
		list, err := client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return nil, err
		}
		var out []*corev1.Pod
		for i := range list.Items {
			out = append(out, &list.Items[i])
		}
		klog.InfoS("gateway stand-in: endpoints not in the cache, listed live", "namespace", ns, "selector", selector, "pods", len(out))
		return out, nil
	}
	c.endpoints = sliceEndpoints{services: svcInf.Lister(), slices: sliceInf.Lister(), pods: podInf.Lister(), pools: c.pools, live: live}
	df.Start(ctx.Done())
	kf.Start(ctx.Done())
	for _, ok := range df.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return errors.New("Gateway API informers did not sync")
		}
	}
	for _, ok := range kf.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return errors.New("Service/EndpointSlice informers did not sync")
		}
	}
	go func() {
		<-ctx.Done()
		c.queue.ShutDown()
	}()
	go c.work(ctx)
	c.queue.Add(syncKey)
	return nil
}

func (c *controller) work(ctx context.Context) {
	defer c.closeAll()
	for {
		key, quit := c.queue.Get()
		if quit {
			return
		}
		if err := c.sync(ctx); err != nil && ctx.Err() == nil {
			klog.V(2).InfoS("gateway stand-in sync", "err", err)
			c.queue.AddRateLimited(key)
		} else {
			c.queue.Forget(key)
		}
		c.queue.Done(key)
	}
}

func (c *controller) poolExists(ns, name string) bool {
	_, err := c.pools.ByNamespace(ns).Get(name)
	return err == nil
}

func (c *controller) closeAll() {
	for key, p := range c.planes {
		p.close()
		delete(c.planes, key)
	}
}

func (p *dataPlane) close() {
	for _, s := range p.servers {
		_ = s.Close()
	}
}

func decode(u *unstructured.Unstructured, field string, into interface{}) error {
	v, ok := u.Object[field]
	if !ok {
		return nil
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, into)
}

func listAll(l cache.GenericLister) ([]*unstructured.Unstructured, error) {
	objs, err := l.List(labels.Everything())
	if err != nil {
		return nil, err
	}
	out := make([]*unstructured.Unstructured, 0, len(objs))
	for _, o := range objs {
		if u, ok := o.(*unstructured.Unstructured); ok {
			out = append(out, u)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].GetNamespace()+"/"+out[i].GetName() < out[j].GetNamespace()+"/"+out[j].GetName()
	})
	return out, nil
}

// sync reconciles everything: classes, Gateways' data planes and status,
// routes' status and the Gateways' routing tables.
func (c *controller) sync(ctx context.Context) error {
	var errs []error
	classes, err := listAll(c.classes)
	if err != nil {
		return err
	}
	ours := map[string]bool{}
	for _, gc := range classes {
		ctrl, _, _ := unstructured.NestedString(gc.Object, "spec", "controllerName")
		if ctrl != ControllerName {
			continue
		}
		ours[gc.GetName()] = true
		status := map[string]interface{}{"conditions": mergeConditions(gc, []cond{
			{"Accepted", "True", "Accepted", "handled by " + ControllerName},
			{"SupportedVersion", "True", "SupportedVersion", "Gateway API " + BundleVersion},
		})}
		errs = append(errs, c.writeStatus(ctx, classGVR, gc, status))
	}

	gws, err := listAll(c.gateways)
	if err != nil {
		return err
	}
	type gwInfo struct {
		obj       *unstructured.Unstructured
		spec      gatewaySpec
		plane     *dataPlane
		rules     []routeRule
		attached  map[string]int64 // by listener name
		programed bool
	}
	infos := map[string]*gwInfo{}
	for _, gw := range gws {
		var spec gatewaySpec
		if err := decode(gw, "spec", &spec); err != nil || !ours[spec.GatewayClassName] {
			continue
		}
		key := gw.GetNamespace() + "/" + gw.GetName()
		plane := c.ensurePlane(key, spec)
		infos[key] = &gwInfo{obj: gw, spec: spec, plane: plane, attached: map[string]int64{}, programed: len(plane.bindErr) == 0}
	}
	for key, p := range c.planes {
		if infos[key] == nil {
			klog.InfoS("gateway stand-in: closing listeners", "gateway", key, "address", p.ip)
			p.close()
			delete(c.planes, key)
		}
	}

	routes, err := listAll(c.routes)
	if err != nil {
		return err
	}
	// InferencePools (namespace/name) behind accepted routes, with their Gateways.
	poolParents := map[string]map[string]bool{}
	for _, rt := range routes {
		var spec httpRouteSpec
		if err := decode(rt, "spec", &spec); err != nil {
			continue
		}
		ns := rt.GetNamespace()
		routeKey := ns + "/" + rt.GetName()
		// Backends and compiled matches are shared by every parent.
		resolvedReason, resolvedMsg := "ResolvedRefs", "all backendRefs resolved"
		var compiled [][]compiledMatch
		var pickers []*picker
		var routePools []string
		badMatch := ""
		for i, r := range spec.Rules {
			var backends []backend
			for _, ref := range r.BackendRefs {
				b, reason, msg := resolveBackend(ref, ns, c.services, c.poolExists)
				if reason != "" && resolvedReason == "ResolvedRefs" {
					resolvedReason, resolvedMsg = reason, msg
				}
				backends = append(backends, b)
				if b.Pool && reason == "" {
					routePools = append(routePools, b.Namespace+"/"+b.Service)
				}
			}
			pickers = append(pickers, newPicker(backends, c.opts.IgnoresWeights))
			matches := r.Matches
			if len(matches) == 0 {
				matches = []httpRouteMatch{{}}
			}
			var cm []compiledMatch
			for _, m := range matches {
				x, err := compileMatch(m)
				if err != nil {
					badMatch = fmt.Sprintf("rule %d: %v", i, err)
					continue
				}
				cm = append(cm, x)
			}
			compiled = append(compiled, cm)
		}
		var parents []interface{}
		for _, pr := range spec.ParentRefs {
			if deref(pr.Group, Group) != Group || deref(pr.Kind, "Gateway") != "Gateway" {
				continue
			}
			info := infos[deref(pr.Namespace, ns)+"/"+pr.Name]
			if info == nil {
				continue // not one of ours
			}
			accepted := cond{"Accepted", "True", "Accepted", "attached to Gateway " + info.obj.GetName()}
			var listeners []string
			for _, l := range info.spec.Listeners {
				if pr.SectionName != nil && *pr.SectionName != l.Name {
					continue
				}
				if pr.Port != nil && *pr.Port != l.Port {
					continue
				}
				if l.Protocol == "HTTP" {
					listeners = append(listeners, l.Name)
				}
			}
			switch {
			case len(listeners) == 0:
				accepted = cond{"Accepted", "False", "NoMatchingParent", "no HTTP listener of the Gateway matches the parentRef"}
			case deref(pr.Namespace, ns) != ns:
				accepted = cond{"Accepted", "False", "NotAllowedByListeners", "listeners allow routes from their own namespace only"}
			case badMatch != "":
				accepted = cond{"Accepted", "False", "UnsupportedValue", badMatch}
			}
			if accepted.status == "True" {
				for _, pk := range routePools {
					if poolParents[pk] == nil {
						poolParents[pk] = map[string]bool{}
					}
					poolParents[pk][info.obj.GetNamespace()+"/"+info.obj.GetName()] = true
				}
				for _, l := range listeners {
					info.attached[l]++
				}
				for i := range compiled {
					for _, m := range compiled[i] {
						info.rules = append(info.rules, routeRule{Route: routeKey, Created: rt.GetCreationTimestamp().Time, Index: i, Match: m, Pick: pickers[i]})
					}
				}
			}
			resolved := cond{"ResolvedRefs", "True", resolvedReason, resolvedMsg}
			if resolvedReason != "ResolvedRefs" {
				resolved.status = "False"
			}
			ref := map[string]interface{}{"group": Group, "kind": "Gateway", "name": pr.Name}
			if pr.Namespace != nil {
				ref["namespace"] = *pr.Namespace
			}
			if pr.SectionName != nil {
				ref["sectionName"] = *pr.SectionName
			}
			if pr.Port != nil {
				ref["port"] = int64(*pr.Port)
			}
			parents = append(parents, map[string]interface{}{
				"parentRef": ref, "controllerName": ControllerName,
				"conditions": mergeParentConditions(rt, ref, []cond{accepted, resolved}),
			})
		}
		if len(parents) == 0 {
			continue
		}
		// Entries of other controllers stay.
		old, _, _ := unstructured.NestedSlice(rt.Object, "status", "parents")
		for _, o := range old {
			if m, ok := o.(map[string]interface{}); ok && m["controllerName"] != ControllerName {
				parents = append(parents, o)
			}
		}
		errs = append(errs, c.writeStatus(ctx, routeGVR, rt, map[string]interface{}{"parents": parents}))
	}

	pools, err := listAll(c.pools)
	if err != nil {
		return err
	}
	for _, pool := range pools {
		gwKeys := poolParents[pool.GetNamespace()+"/"+pool.GetName()]
		if len(gwKeys) == 0 {
			continue
		}
		var parents []interface{}
		old, _, _ := unstructured.NestedSlice(pool.Object, "status", "parents")
		for _, gk := range sortedKeys(gwKeys) {
			ns, name, _ := strings.Cut(gk, "/")
			ref := map[string]interface{}{"group": Group, "kind": "Gateway", "namespace": ns, "name": name}
			var prev []interface{}
			for _, o := range old {
				if m, ok := o.(map[string]interface{}); ok {
					if r, _ := m["parentRef"].(map[string]interface{}); r["name"] == name && r["namespace"] == ns {
						prev, _ = m["conditions"].([]interface{})
					}
				}
			}
			parents = append(parents, map[string]interface{}{"parentRef": ref, "conditions": buildConditions(prev, pool.GetGeneration(), []cond{
				{"Accepted", "True", "Accepted", "routed by Gateway " + name + " with the built-in endpoint picker"},
				{"ResolvedRefs", "True", "ResolvedRefs", ""},
			})})
		}
		errs = append(errs, c.writeStatus(ctx, poolGVR, pool, map[string]interface{}{"parents": parents}))
	}

	for _, key := range sortedKeys(infos) {
		info := infos[key]
		sortRules(info.rules)
		info.plane.proxy.table.Store(&table{rules: info.rules})
		errs = append(errs, c.writeStatus(ctx, gwGVR, info.obj, gatewayStatus(info.obj, info.spec, info.plane, info.attached)))
	}
	return errors.Join(errs...)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// gatewayAddress is the loopback address of the n-th Gateway (127.2.0.0/16:
// simulated nodes use 127.1/16, pods 127.16/12 and above).
func gatewayAddress(n int) string {
	return fmt.Sprintf("127.2.%d.%d", n/250, n%250+1)
}

// addressAttempts bounds the search for a free Gateway address.
const addressAttempts = 64

// claimAddress takes the next Gateway address whose HTTP listener ports are
// free on this machine and returns it with those ports already bound: other
// clusters on the same machine hand out the same loopback addresses, and an
// address one of them holds is skipped instead of leaving the Gateway
// unprogrammed. Errors other than "address in use" are left to ensurePlane,
// which reports them in the Gateway's status.
func (c *controller) claimAddress(spec gatewaySpec) (string, map[int32]net.Listener) {
	var ip string
	for attempt := 0; attempt < addressAttempts; attempt++ {
		ip = gatewayAddress(c.nextIP)
		if c.opts.Address != nil {
			addr, ok := c.opts.Address(c.nextIP)
			if !ok {
				return ip, nil
			}
			ip = addr
		}
		c.nextIP++
		bound, inUse := bindListeners(ip, spec)
		if !inUse {
			return ip, bound
		}
		klog.InfoS("gateway stand-in: address in use on this machine, taking the next one", "address", ip)
	}
	return ip, nil
}

// bindListeners binds every HTTP listener port of spec on ip. When one is in
// use it closes the others and reports inUse.
func bindListeners(ip string, spec gatewaySpec) (bound map[int32]net.Listener, inUse bool) {
	bound = map[int32]net.Listener{}
	for _, l := range spec.Listeners {
		if l.Protocol != "HTTP" || bound[l.Port] != nil {
			continue
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(int(l.Port))))
		if errors.Is(err, syscall.EADDRINUSE) {
			for _, b := range bound {
				_ = b.Close()
			}
			return nil, true
		}
		if err == nil {
			bound[l.Port] = ln
		}
	}
	return bound, false
}

// ensurePlane gives the Gateway an address and opens an HTTP server on each
// of its HTTP listener ports (once; a port that failed is retried on the
// next sync).
func (c *controller) ensurePlane(key string, spec gatewaySpec) *dataPlane {
	p := c.planes[key]
	var bound map[int32]net.Listener
	if p == nil {
		var ip string
		ip, bound = c.claimAddress(spec)
		p = &dataPlane{ip: ip, proxy: newProxy(key, c.endpoints, c.picker), servers: map[int32]*http.Server{}}
		p.proxy.noDisaggregation = c.opts.NoDisaggregation
		c.planes[key] = p
	}
	p.bindErr = map[int32]string{}
	want := map[int32]bool{}
	for _, l := range spec.Listeners {
		if l.Protocol != "HTTP" {
			continue
		}
		want[l.Port] = true
		if p.servers[l.Port] != nil {
			continue
		}
		addr := net.JoinHostPort(p.ip, strconv.Itoa(int(l.Port)))
		ln, err := bound[l.Port], error(nil)
		if ln == nil {
			ln, err = net.Listen("tcp", addr)
		}
		if err != nil {
			p.bindErr[l.Port] = err.Error()
			continue
		}
		srv := &http.Server{Handler: p.proxy, ReadHeaderTimeout: 10 * time.Second}
		p.servers[l.Port] = srv
		klog.InfoS("gateway stand-in: listening", "gateway", key, "address", addr)
		go func() {
			if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
				klog.ErrorS(err, "gateway stand-in listener", "gateway", key, "address", addr)
			}
		}()
	}
	for port, s := range p.servers {
		if !want[port] {
			_ = s.Close()
			delete(p.servers, port)
		}
	}
	return p
}

func gatewayStatus(gw *unstructured.Unstructured, spec gatewaySpec, p *dataPlane, attached map[string]int64) map[string]interface{} {
	var listeners []interface{}
	programmed := len(p.bindErr) == 0
	programmedMsg := "listening on " + p.ip
	for _, l := range spec.Listeners {
		acc := cond{"Accepted", "True", "Accepted", ""}
		prog := cond{"Programmed", "True", "Programmed", fmt.Sprintf("listening on %s", net.JoinHostPort(p.ip, strconv.Itoa(int(l.Port))))}
		kinds := []interface{}{map[string]interface{}{"group": Group, "kind": "HTTPRoute"}}
		if l.Protocol != "HTTP" {
			acc = cond{"Accepted", "False", "UnsupportedProtocol", "only HTTP listeners are implemented"}
			prog = cond{"Programmed", "False", "Invalid", "listener not accepted"}
			kinds = []interface{}{}
		} else if e, bad := p.bindErr[l.Port]; bad {
			prog = cond{"Programmed", "False", "Invalid", e}
			programmedMsg = e
		}
		listeners = append(listeners, map[string]interface{}{
			"name": l.Name, "supportedKinds": kinds, "attachedRoutes": attached[l.Name],
			"conditions": mergeListenerConditions(gw, l.Name, []cond{acc, prog, {"ResolvedRefs", "True", "ResolvedRefs", ""}}),
		})
	}
	pc := cond{"Programmed", "True", "Programmed", programmedMsg}
	if !programmed {
		pc = cond{"Programmed", "False", "Invalid", programmedMsg}
	}
	return map[string]interface{}{
		"addresses":  []interface{}{map[string]interface{}{"type": "IPAddress", "value": p.ip}},
		"conditions": mergeConditions(gw, []cond{{"Accepted", "True", "Accepted", ""}, pc}),
		"listeners":  listeners,
	}
}

type cond struct{ typ, status, reason, message string }

// buildConditions renders conditions at the object's generation, keeping the
// transition time of an unchanged condition from old.
func buildConditions(old []interface{}, gen int64, want []cond) []interface{} {
	now := time.Now().UTC().Format(time.RFC3339)
	var out []interface{}
	for _, w := range want {
		ts := now
		for _, o := range old {
			m, _ := o.(map[string]interface{})
			if m["type"] == w.typ && m["status"] == w.status {
				if s, ok := m["lastTransitionTime"].(string); ok {
					ts = s
				}
			}
		}
		out = append(out, map[string]interface{}{
			"type": w.typ, "status": w.status, "reason": w.reason, "message": w.message,
			"observedGeneration": gen, "lastTransitionTime": ts,
		})
	}
	return out
}

func mergeConditions(u *unstructured.Unstructured, want []cond) []interface{} {
	old, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	return buildConditions(old, u.GetGeneration(), want)
}

func mergeListenerConditions(u *unstructured.Unstructured, name string, want []cond) []interface{} {
	ls, _, _ := unstructured.NestedSlice(u.Object, "status", "listeners")
	for _, l := range ls {
		if m, ok := l.(map[string]interface{}); ok && m["name"] == name {
			old, _ := m["conditions"].([]interface{})
			return buildConditions(old, u.GetGeneration(), want)
		}
	}
	return buildConditions(nil, u.GetGeneration(), want)
}

func mergeParentConditions(u *unstructured.Unstructured, ref map[string]interface{}, want []cond) []interface{} {
	ps, _, _ := unstructured.NestedSlice(u.Object, "status", "parents")
	for _, p := range ps {
		m, ok := p.(map[string]interface{})
		if !ok || m["controllerName"] != ControllerName {
			continue
		}
		if r, _ := m["parentRef"].(map[string]interface{}); r["name"] == ref["name"] && r["sectionName"] == ref["sectionName"] {
			old, _ := m["conditions"].([]interface{})
			return buildConditions(old, u.GetGeneration(), want)
		}
	}
	return buildConditions(nil, u.GetGeneration(), want)
}

// writeStatus replaces the object's status when it differs.
func (c *controller) writeStatus(ctx context.Context, gvr schema.GroupVersionResource, u *unstructured.Unstructured, status map[string]interface{}) error {
	// Normalise through JSON so the comparison sees the types the API returns.
	raw, err := json.Marshal(status)
	if err != nil {
		return err
	}
	var norm map[string]interface{}
	if err := json.Unmarshal(raw, &norm); err != nil {
		return err
	}
	oldRaw, _ := json.Marshal(u.Object["status"])
	var old map[string]interface{}
	_ = json.Unmarshal(oldRaw, &old)
	if equality.Semantic.DeepEqual(old, norm) {
		return nil
	}
	upd := u.DeepCopy()
	upd.Object["status"] = status
	var ri dynamic.ResourceInterface = c.dyn.Resource(gvr)
	if ns := u.GetNamespace(); ns != "" {
		ri = c.dyn.Resource(gvr).Namespace(ns)
	}
	_, err = ri.UpdateStatus(ctx, upd, metav1.UpdateOptions{})
	return err
}

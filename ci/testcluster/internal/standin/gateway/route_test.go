package gateway

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

func mustMatch(t *testing.T, m httpRouteMatch) compiledMatch {
	t.Helper()
	c, err := compileMatch(m)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func req(method, path string, headers ...string) *http.Request {
	r := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Add(headers[i], headers[i+1])
	}
	return r
}

func TestMatchDefaultsAndHeaders(t *testing.T) {
	any := mustMatch(t, httpRouteMatch{})
	if !any.matches(req("GET", "/v1/completions")) || !any.matches(req("POST", "/")) {
		t.Fatal("an empty match is prefix / and matches everything")
	}
	prefix := mustMatch(t, httpRouteMatch{Path: &pathMatch{Value: ptr.To("/v1/")}})
	if !prefix.matches(req("GET", "/v1")) || !prefix.matches(req("GET", "/v1/chat")) || prefix.matches(req("GET", "/v10")) {
		t.Fatal("prefixes match whole path elements")
	}
	exact := mustMatch(t, httpRouteMatch{Path: &pathMatch{Type: ptr.To("Exact"), Value: ptr.To("/healthz")}})
	if !exact.matches(req("GET", "/healthz")) || exact.matches(req("GET", "/healthz/x")) {
		t.Fatal("exact path")
	}
	hdr := mustMatch(t, httpRouteMatch{Headers: []headerMatch{{Name: "x-gateway-model-name", Value: "canary"}}, Method: ptr.To("POST")})
	if !hdr.matches(req("POST", "/", "X-Gateway-Model-Name", "canary")) {
		t.Fatal("header names are case-insensitive")
	}
	if hdr.matches(req("POST", "/", "X-Gateway-Model-Name", "Canary")) || hdr.matches(req("GET", "/", "X-Gateway-Model-Name", "canary")) || hdr.matches(req("POST", "/")) {
		t.Fatal("header values are exact; method must match")
	}
	re := mustMatch(t, httpRouteMatch{Headers: []headerMatch{{Type: ptr.To("RegularExpression"), Name: "x-model", Value: "^llama-[0-9]+b$"}}})
	if !re.matches(req("GET", "/", "x-model", "llama-70b")) || re.matches(req("GET", "/", "x-model", "llama-x")) {
		t.Fatal("regular expression header match")
	}
	if _, err := compileMatch(httpRouteMatch{Headers: []headerMatch{{Type: ptr.To("RegularExpression"), Name: "x", Value: "("}}}); err == nil {
		t.Fatal("invalid regexp accepted")
	}
}

func TestPrecedenceHeaderRuleBeforeDefault(t *testing.T) {
	old := time.Unix(100, 0)
	rules := []routeRule{
		{Route: "ns/a", Created: old, Index: 0, Match: mustMatch(t, httpRouteMatch{})},
		{Route: "ns/a", Created: old, Index: 1, Match: mustMatch(t, httpRouteMatch{Headers: []headerMatch{{Name: "x-gateway-model-name", Value: "canary"}}})},
		{Route: "ns/b", Created: old.Add(time.Second), Index: 0, Match: mustMatch(t, httpRouteMatch{Path: &pathMatch{Value: ptr.To("/v1")}})},
		{Route: "ns/c", Created: old, Index: 0, Match: mustMatch(t, httpRouteMatch{Path: &pathMatch{Type: ptr.To("Exact"), Value: ptr.To("/")}})},
	}
	sortRules(rules)
	got := []string{}
	for _, r := range rules {
		got = append(got, fmt.Sprintf("%s#%d", r.Route, r.Index))
	}
	if strings.Join(got, ",") != "ns/c#0,ns/b#0,ns/a#1,ns/a#0" {
		t.Fatalf("order %v", got)
	}
	if r := firstMatch(rules, req("GET", "/x", "x-gateway-model-name", "canary")); r == nil || r.Index != 1 {
		t.Fatalf("header rule: %+v", r)
	}
	if r := firstMatch(rules, req("GET", "/x")); r == nil || r.Route != "ns/a" || r.Index != 0 {
		t.Fatalf("default rule: %+v", r)
	}
	if firstMatch(nil, req("GET", "/")) != nil {
		t.Fatal("no rules, no match")
	}
}

func TestPickerFollowsWeightsExactly(t *testing.T) {
	p := newPicker([]backend{{Service: "a", Weight: 3}, {Service: "b", Weight: 1}, {Service: "off", Weight: 0}}, false)
	count := map[string]int{}
	for i := 0; i < 400; i++ {
		b, ok := p.next()
		if !ok {
			t.Fatal("no backend")
		}
		count[b.Service]++
	}
	if count["a"] != 300 || count["b"] != 100 || count["off"] != 0 {
		t.Fatalf("split %v", count)
	}
	// Smooth: b never waits more than the sum of weights.
	seq := ""
	for i := 0; i < 8; i++ {
		b, _ := p.next()
		seq += b.Service
	}
	if strings.Count(seq, "b") != 2 {
		t.Fatalf("sequence %s", seq)
	}
	if _, ok := newPicker([]backend{{Service: "z", Weight: 0}}, false).next(); ok {
		t.Fatal("all weights zero: no backend")
	}
}

func TestPickerIgnoringWeightsUsesFirstBackend(t *testing.T) {
	p := newPicker([]backend{{Service: "a", Weight: 1}, {Service: "b", Weight: 99}}, true)
	for i := 0; i < 50; i++ {
		if b, _ := p.next(); b.Service != "a" {
			t.Fatalf("request %d went to %s", i, b.Service)
		}
	}
}

func TestReadyAddressesFollowTargetPortAndReadiness(t *testing.T) {
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "ns"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}, {Name: "metrics", Port: 9090}}}}
	slices := []*discoveryv1.EndpointSlice{{
		Ports: []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080)}, {Name: ptr.To("metrics"), Port: ptr.To[int32](9091)}},
		Endpoints: []discoveryv1.Endpoint{
			{Addresses: []string{"127.16.0.2"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}},
			{Addresses: []string{"127.16.0.3"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(false)}},
			{Addresses: []string{"127.16.0.4"}},
		},
	}}
	got, err := readyAddresses(svc, slices, 80)
	if err != nil || strings.Join(got, ",") != "127.16.0.2:8080,127.16.0.4:8080" {
		t.Fatalf("%v %v", got, err)
	}
	if _, err := readyAddresses(svc, slices, 81); err == nil {
		t.Fatal("unknown service port")
	}
}

func TestServiceBackendResolution(t *testing.T) {
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "ns"}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}}
	lookup := func(ns, name string) (*corev1.Service, error) {
		if ns == "ns" && name == "s" {
			return svc, nil
		}
		return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "services"}, name)
	}
	if b, reason, _ := serviceBackend(backendRef{Name: "s", Port: ptr.To[int32](80)}, "ns", lookup); reason != "" || b.Weight != 1 {
		t.Fatalf("%+v %s", b, reason)
	}
	for ref, want := range map[*backendRef]string{
		{Name: "missing", Port: ptr.To[int32](80)}: "BackendNotFound",
		{Name: "s", Port: ptr.To[int32](81)}:       "BackendNotFound",
		{Name: "s"}:                                "UnsupportedValue",
		{Name: "s", Port: ptr.To[int32](80), Namespace: ptr.To("other")}:    "RefNotPermitted",
		{Name: "s", Port: ptr.To[int32](80), Kind: ptr.To("InferencePool")}: "InvalidKind",
	} {
		if _, reason, _ := serviceBackend(*ref, "ns", lookup); reason != want {
			t.Errorf("%+v: %s, want %s", *ref, reason, want)
		}
	}
}

type fixedEndpoints map[string][]string

func (f fixedEndpoints) Ready(ns, name string, port int32) ([]string, error) {
	return f[ns+"/"+name], nil
}

func (f fixedEndpoints) PoolReady(ns, name string) ([]string, error) {
	return f["pool:"+ns+"/"+name], nil
}

// backendServer answers with its name, like `aiconform probe serve`.
func backendServer(t *testing.T, name string) string {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("x-served-by", name)
		_, _ = io.WriteString(w, name)
	}))
	t.Cleanup(s.Close)
	return strings.TrimPrefix(s.URL, "http://")
}

func TestProxyRoutesByHeaderAndWeight(t *testing.T) {
	for _, ignore := range []bool{false, true} {
		eps := fixedEndpoints{"ns/a": {backendServer(t, "a")}, "ns/b": {backendServer(t, "b")}, "ns/empty": nil}
		p := newProxy("ns/gw", eps, newEndpointPicker(false))
		weighted := newPicker([]backend{{Namespace: "ns", Service: "a", Port: 80, Weight: 3}, {Namespace: "ns", Service: "b", Port: 80, Weight: 1}}, ignore)
		pinned := newPicker([]backend{{Namespace: "ns", Service: "b", Port: 80, Weight: 1}}, ignore)
		empty := newPicker([]backend{{Namespace: "ns", Service: "empty", Port: 80, Weight: 1}}, ignore)
		rules := []routeRule{
			{Route: "ns/r", Index: 0, Match: mustMatch(t, httpRouteMatch{Path: &pathMatch{Value: ptr.To("/v1")}}), Pick: weighted},
			{Route: "ns/r", Index: 1, Match: mustMatch(t, httpRouteMatch{Path: &pathMatch{Value: ptr.To("/v1")}, Headers: []headerMatch{{Name: "x-gateway-model-name", Value: "canary"}}}), Pick: pinned},
			{Route: "ns/r", Index: 2, Match: mustMatch(t, httpRouteMatch{Path: &pathMatch{Value: ptr.To("/empty")}}), Pick: empty},
		}
		sortRules(rules)
		p.table.Store(&table{rules: rules})
		srv := httptest.NewServer(p)
		get := func(path string, headers ...string) (int, string) {
			r, _ := http.NewRequest("GET", srv.URL+path, nil)
			for i := 0; i+1 < len(headers); i += 2 {
				r.Header.Set(headers[i], headers[i+1])
			}
			resp, err := http.DefaultClient.Do(r)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, resp.Header.Get("x-served-by") + "|" + string(body)
		}
		count := map[string]int{}
		for i := 0; i < 40; i++ {
			_, who := get("/v1/completions")
			count[who]++
		}
		want := map[string]int{"a|a": 30, "b|b": 10}
		if ignore {
			want = map[string]int{"a|a": 40}
		}
		if fmt.Sprint(count) != fmt.Sprint(want) {
			t.Errorf("ignoreWeights=%v: split %v, want %v", ignore, count, want)
		}
		for i := 0; i < 5; i++ {
			if _, who := get("/v1/chat", "X-Gateway-Model-Name", "canary"); who != "b|b" {
				t.Errorf("header rule went to %s", who)
			}
		}
		if code, _ := get("/other"); code != http.StatusNotFound {
			t.Errorf("unmatched path: %d", code)
		}
		if code, body := get("/empty"); code != http.StatusServiceUnavailable || !strings.Contains(body, "no ready endpoints") {
			t.Errorf("no endpoints: %d %s", code, body)
		}
		srv.Close()
	}
}

func TestProxyReportsUnreachableBackend(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	p := newProxy("ns/gw", fixedEndpoints{"ns/a": {dead}}, newEndpointPicker(false))
	p.table.Store(&table{rules: []routeRule{{Route: "ns/r", Match: mustMatch(t, httpRouteMatch{}),
		Pick: newPicker([]backend{{Namespace: "ns", Service: "a", Port: 80, Weight: 1}}, false)}}})
	w := httptest.NewRecorder()
	p.ServeHTTP(w, req("GET", "/"))
	if w.Code != http.StatusBadGateway || !strings.Contains(w.Body.String(), "backend ns/a") {
		t.Fatalf("%d %s", w.Code, w.Body.String())
	}
}

func TestCRDsAreStructural(t *testing.T) {
	for _, crd := range CRDs() {
		var internal apiextensions.JSONSchemaProps
		if err := apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(crd.Spec.Versions[0].Schema.OpenAPIV3Schema, &internal, nil); err != nil {
			t.Fatal(err)
		}
		s, err := structuralschema.NewStructural(&internal)
		if err != nil {
			t.Fatalf("%s: %v", crd.Name, err)
		}
		if errs := structuralschema.ValidateStructural(nil, s); len(errs) > 0 {
			t.Fatalf("%s is not structural: %v", crd.Name, errs)
		}
	}
	if gatewayAddress(0) != "127.2.0.1" || gatewayAddress(250) != "127.2.1.1" {
		t.Fatal("gateway addresses")
	}
}

func TestReadyPodAddressesLikeTheEndpointSliceController(t *testing.T) {
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "ns"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromString("http")}, {Port: 81, TargetPort: intstr.FromInt32(9000)}}}}
	pod := func(name, ip string, ready bool, deleting bool) *corev1.Pod {
		st := corev1.ConditionFalse
		if ready {
			st = corev1.ConditionTrue
		}
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec:   corev1.PodSpec{Containers: []corev1.Container{{Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}}},
			Status: corev1.PodStatus{PodIP: ip, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: st}}}}
		if deleting {
			p.DeletionTimestamp = &metav1.Time{}
		}
		return p
	}
	pods := []*corev1.Pod{pod("b", "127.16.0.3", true, false), pod("a", "127.16.0.2", true, false),
		pod("c", "127.16.0.4", false, false), pod("d", "127.16.0.5", true, true), pod("e", "", true, false)}
	got, err := readyPodAddresses(svc, pods, 80)
	if err != nil || strings.Join(got, ",") != "127.16.0.2:8080,127.16.0.3:8080" {
		t.Fatalf("%v %v", got, err)
	}
	if got, _ := readyPodAddresses(svc, pods, 81); strings.Join(got, ",") != "127.16.0.2:9000,127.16.0.3:9000" {
		t.Fatalf("numeric target port: %v", got)
	}
}
